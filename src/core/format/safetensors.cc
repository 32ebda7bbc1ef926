#include "core/format/safetensors.h"

#include <algorithm>
#include <cstring>
#include <set>

#include <nlohmann/json.hpp>

#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd {
namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // the format's own limit (100 MB)

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": not a valid safetensors file: " + what, "re-export or re-download the model");
}

}  // namespace

int64_t safetensors_dtype_size(const std::string& d) {
  static const std::map<std::string, int64_t> sizes = {{"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1},
                                                       {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
                                                       {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8}};
  auto it = sizes.find(d);
  return it == sizes.end() ? 0 : it->second;
}

int64_t SafetensorsTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  if (!file_exists(path)) throw Error(path + " does not exist", "check the model folder");
  file_ = std::make_unique<MappedFile>(path);
  const uint64_t size = file_->size();
  if (size < 8) fail(path, "shorter than the 8-byte header length");
  uint64_t n;
  std::memcpy(&n, file_->data(), 8);
  if (n > kMaxHeader || n > size - 8) fail(path, "header length " + std::to_string(n) + " runs past the end of the file");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(file_->data() + 8, file_->data() + 8 + n);
  } catch (const std::exception& e) {
    fail(path, std::string("header is not JSON: ") + e.what());
  }
  if (!h.is_object()) fail(path, "header is not a JSON object");
  const uint8_t* base = file_->data() + 8 + n;
  const uint64_t data_size = size - 8 - n;
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it.value().is_object()) fail(path, "__metadata__ is not an object");
      for (auto m = it.value().begin(); m != it.value().end(); ++m) {
        if (!m.value().is_string()) fail(path, "__metadata__." + m.key() + " is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const nlohmann::json& e = it.value();
    const std::string where = "tensor " + it.key();
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      fail(path, where + " lacks dtype, shape or data_offsets");
    SafetensorsTensor t;
    if (!e["dtype"].is_string()) fail(path, where + ": dtype is not a string");
    t.dtype = e["dtype"].get<std::string>();
    const int64_t es = safetensors_dtype_size(t.dtype);
    if (es == 0) fail(path, where + ": unknown dtype " + t.dtype);
    if (!e["shape"].is_array()) fail(path, where + ": shape is not an array");
    uint64_t numel = 1;
    for (const auto& d : e["shape"]) {
      if (!d.is_number_unsigned()) fail(path, where + ": shape holds a non-integer or negative size");
      const uint64_t v = d.get<uint64_t>();
      if (v != 0 && numel > (uint64_t(1) << 62) / v) fail(path, where + ": shape overflows");
      numel *= v;
      t.shape.push_back(static_cast<int64_t>(v));
    }
    const auto& off = e["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail(path, where + ": data_offsets is not [begin, end]");
    const uint64_t b = off[0].get<uint64_t>(), en = off[1].get<uint64_t>();
    if (b > en || en > data_size) fail(path, where + ": data_offsets [" + std::to_string(b) + ", " + std::to_string(en) +
                                                 ") outside the " + std::to_string(data_size) + " data bytes");
    uint64_t need;
    if (__builtin_mul_overflow(numel, static_cast<uint64_t>(es), &need)) fail(path, where + ": shape overflows");
    if (en - b != need)
      fail(path, where + ": " + std::to_string(en - b) + " bytes for " + std::to_string(numel) + " " + t.dtype + " values");
    t.data = base + b;
    t.bytes = en - b;
    spans.emplace_back(b, en);
    tensors_[it.key()] = t;
  }
  // The data region is exactly the tensors, back to back: no overlap, no gap, nothing after.
  std::sort(spans.begin(), spans.end());
  uint64_t at = 0;
  for (const auto& [b, e] : spans) {
    if (b != at) fail(path, b < at ? "tensors overlap" : "a gap between tensors at byte " + std::to_string(at));
    at = e;
  }
  if (at != data_size) fail(path, std::to_string(data_size - at) + " bytes after the last tensor");
}

SafetensorsFile::~SafetensorsFile() = default;

const SafetensorsTensor* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const SafetensorsTensor& SafetensorsFile::get(const std::string& name, const std::string& dtype,
                                              const std::vector<int64_t>& shape) const {
  const SafetensorsTensor* t = find(name);
  auto str = [](const std::vector<int64_t>& s) {
    std::string o = "[";
    for (size_t i = 0; i < s.size(); ++i) o += (i ? ", " : "") + std::to_string(s[i]);
    return o + "]";
  };
  if (!t) throw Error(path_ + ": missing tensor " + name, "re-export the model");
  if (t->dtype != dtype || t->shape != shape)
    throw Error(path_ + ": tensor " + name + " is " + t->dtype + " " + str(t->shape) + ", expected " + dtype + " " + str(shape),
                "re-export the model");
  return *t;
}

void SafetensorsWriter::add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape, const void* data,
                            uint64_t bytes) {
  int64_t numel = 1;
  for (int64_t d : shape) numel *= d;
  if (safetensors_dtype_size(dtype) == 0 || static_cast<uint64_t>(numel * safetensors_dtype_size(dtype)) != bytes)
    throw Error("safetensors writer: tensor " + name + " has " + std::to_string(bytes) + " bytes for its " + dtype + " shape");
  entries_.push_back({name, dtype, std::move(shape), std::string(static_cast<const char*>(data), static_cast<size_t>(bytes))});
}

void SafetensorsWriter::write(const std::string& path) const {
  nlohmann::json h = nlohmann::json::object();
  if (!metadata_.empty()) h["__metadata__"] = metadata_;
  uint64_t at = 0;
  std::set<std::string> names;
  for (const Entry& e : entries_) {
    if (!names.insert(e.name).second) throw Error("safetensors writer: tensor " + e.name + " added twice");
    h[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {at, at + e.data.size()}}};
    at += e.data.size();
  }
  std::string header = h.dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string out;
  const uint64_t n = header.size();
  out.append(reinterpret_cast<const char*>(&n), 8);
  out += header;
  for (const Entry& e : entries_) out += e.data;
  write_file_atomic(path, out);
}

}  // namespace bkd

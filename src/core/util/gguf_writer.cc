#include "core/util/gguf_writer.h"

#include <cstring>
#include <set>

#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF"
constexpr uint32_t kVersion = 3;
// GGUF metadata value types (gguf.h).
enum : uint32_t { kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9, kU64 = 10 };
constexpr size_t kMaxName = 63;  // ggml's GGML_MAX_NAME (64) holds the name and its terminator

// Elements per block and bytes per block of a ggml type (ggml.c's type traits).
std::pair<uint64_t, uint64_t> block_of(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return {1, 4};
    case GgmlType::F16: return {1, 2};
    case GgmlType::BF16: return {1, 2};
    case GgmlType::I8: return {1, 1};
    case GgmlType::Q4_0: return {32, 18};
    case GgmlType::Q8_0: return {32, 34};
    case GgmlType::TQ1_0: return {256, 54};
    case GgmlType::TQ2_0: return {256, 66};
  }
  return {1, 0};
}

void put(std::string& out, const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
void put_u32(std::string& out, uint32_t v) { put(out, &v, 4); }
void put_u64(std::string& out, uint64_t v) { put(out, &v, 8); }
void put_str(std::string& out, const std::string& s) {
  put_u64(out, s.size());
  out += s;
}
uint64_t aligned(uint64_t n) { return (n + GgufWriter::kAlignment - 1) / GgufWriter::kAlignment * GgufWriter::kAlignment; }

}  // namespace

const char* to_string(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return "F32";
    case GgmlType::F16: return "F16";
    case GgmlType::Q4_0: return "Q4_0";
    case GgmlType::Q8_0: return "Q8_0";
    case GgmlType::I8: return "I8";
    case GgmlType::BF16: return "BF16";
    case GgmlType::TQ1_0: return "TQ1_0";
    case GgmlType::TQ2_0: return "TQ2_0";
  }
  return "?";
}

void GgufWriter::key(const std::string& k, uint32_t value_type) {
  put_str(kv_, k);
  put_u32(kv_, value_type);
  ++kv_count_;
}

void GgufWriter::add_string(const std::string& k, const std::string& v) { key(k, kString), put_str(kv_, v); }
void GgufWriter::add_u32(const std::string& k, uint32_t v) { key(k, kU32), put_u32(kv_, v); }
void GgufWriter::add_u64(const std::string& k, uint64_t v) { key(k, kU64), put_u64(kv_, v); }
void GgufWriter::add_f32(const std::string& k, float v) { key(k, kF32), put(kv_, &v, 4); }
void GgufWriter::add_bool(const std::string& k, bool v) {
  key(k, kBool);
  const uint8_t b = v ? 1 : 0;
  put(kv_, &b, 1);
}
void GgufWriter::add_strings(const std::string& k, const std::vector<std::string>& v) {
  key(k, kArray);
  put_u32(kv_, kString);
  put_u64(kv_, v.size());
  for (const auto& s : v) put_str(kv_, s);
}
void GgufWriter::add_f32s(const std::string& k, const std::vector<float>& v) {
  key(k, kArray);
  put_u32(kv_, kF32);
  put_u64(kv_, v.size());
  put(kv_, v.data(), v.size() * 4);
}
void GgufWriter::add_i32s(const std::string& k, const std::vector<int32_t>& v) {
  key(k, kArray);
  put_u32(kv_, kI32);
  put_u64(kv_, v.size());
  put(kv_, v.data(), v.size() * 4);
}

void GgufWriter::add_tensor(const std::string& name, std::vector<uint64_t> dims, GgmlType type, const void* data, uint64_t bytes) {
  if (dims.empty() || dims.size() > 4) throw Error("GGUF tensor " + name + ": " + std::to_string(dims.size()) + " dimensions (1-4 allowed)");
  if (name.size() > kMaxName) throw Error("GGUF tensor name " + name + " is longer than " + std::to_string(kMaxName) + " bytes");
  const auto [per_block, block_bytes] = block_of(type);
  if (dims[0] % per_block != 0)
    throw Error("GGUF tensor " + name + ": rows of " + std::to_string(dims[0]) + " do not fill " + to_string(type) + " blocks");
  uint64_t expect = dims[0] / per_block * block_bytes;
  for (size_t i = 1; i < dims.size(); ++i) expect *= dims[i];
  if (expect != bytes)
    throw Error("GGUF tensor " + name + ": " + std::to_string(bytes) + " bytes for a " + to_string(type) + " shape that needs " +
                std::to_string(expect));
  Tensor t{name, std::move(dims), type, std::string(static_cast<const char*>(data), static_cast<size_t>(bytes))};
  tensors_.push_back(std::move(t));
}

void GgufWriter::write(const std::string& path) const {
  std::set<std::string> names;
  for (const Tensor& t : tensors_)
    if (!names.insert(t.name).second) throw Error("GGUF writer: tensor " + t.name + " added twice (" + path + ")");
  std::string out;
  put_u32(out, kMagic);
  put_u32(out, kVersion);
  put_u64(out, tensors_.size());
  put_u64(out, kv_count_ + 1);
  out += kv_;
  put_str(out, "general.alignment");
  put_u32(out, kU32);
  put_u32(out, kAlignment);
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    put_str(out, t.name);
    put_u32(out, static_cast<uint32_t>(t.dims.size()));
    for (uint64_t d : t.dims) put_u64(out, d);
    put_u32(out, static_cast<uint32_t>(t.type));
    put_u64(out, offset);
    offset += aligned(t.data.size());
  }
  out.append(aligned(out.size()) - out.size(), '\0');
  for (const Tensor& t : tensors_) {
    out += t.data;
    out.append(aligned(t.data.size()) - t.data.size(), '\0');
  }
  ensure_dir(parent_dir(path));
  write_file_atomic(path, out);
}

}  // namespace bkd

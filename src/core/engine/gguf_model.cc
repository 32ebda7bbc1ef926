#include "core/engine/gguf_model.h"

#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "core/util/gguf_writer.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF"
constexpr uint32_t kVersion = 3;
constexpr uint64_t kAlign = 32;
constexpr const char* kLayout = "2bit-code-w+1-block256-v1";
enum GgufValue : uint32_t { kU32 = 4, kI32 = 5, kF32 = 6, kString = 8, kU64 = 10, kF64 = 12 };
// Raw ggml type ids of the tensors this file holds (GgmlType in core/util/gguf_writer.h).
constexpr uint32_t kTF32 = static_cast<uint32_t>(GgmlType::F32), kTI8 = static_cast<uint32_t>(GgmlType::I8),
                   kTBF16 = static_cast<uint32_t>(GgmlType::BF16);

class Reader {
 public:
  Reader(const uint8_t* p, size_t n, const std::string& path) : p_(p), n_(n), path_(path) {}
  const uint8_t* take(size_t k) {
    if (k > n_ - pos_) fail("file is truncated");
    const uint8_t* r = p_ + pos_;
    pos_ += k;
    return r;
  }
  uint32_t u32() { uint32_t v; std::memcpy(&v, take(4), 4); return v; }
  uint64_t u64() { uint64_t v; std::memcpy(&v, take(8), 8); return v; }
  std::string str() {
    const uint64_t len = u64();
    if (len > n_) fail("string length out of range");
    const uint8_t* s = take(static_cast<size_t>(len));
    return std::string(reinterpret_cast<const char*>(s), static_cast<size_t>(len));
  }
  void skip_value(uint32_t type) {
    static const std::map<uint32_t, size_t> size = {{0, 1}, {1, 1}, {2, 2}, {3, 2}, {4, 4}, {5, 4}, {6, 4}, {7, 1}, {10, 8}, {11, 8}, {12, 8}};
    if (type == kString) { str(); return; }
    if (type == 9) {
      const uint32_t t = u32();
      const uint64_t n = u64();
      for (uint64_t i = 0; i < n; ++i) skip_value(t);
      return;
    }
    auto it = size.find(type);
    if (it == size.end()) fail("unknown metadata value type " + std::to_string(type));
    take(it->second);
  }
  size_t pos() const { return pos_; }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(path_ + ": " + what, "re-export the model with `bitnet-kde export`");
  }

 private:
  const uint8_t* p_;
  size_t n_, pos_ = 0;
  std::string path_;
};

void add_floats(GgufWriter& w, const std::string& name, const std::vector<float>& v) {
  w.add_tensor(name, {v.size()}, GgmlType::F32, v.data(), v.size() * 4);
}

void add_table(GgufWriter& w, const std::string& name, const EmbeddingTable& t) {
  const GgmlType type = t.format == TableFormat::F32 ? GgmlType::F32 : t.format == TableFormat::BF16 ? GgmlType::BF16 : GgmlType::I8;
  w.add_tensor(name, {static_cast<uint64_t>(t.cols), static_cast<uint64_t>(t.rows)}, type, t.data.data(), t.data.bytes());
  if (t.format == TableFormat::I8) add_floats(w, name + ".row_scale", t.row_scale);
}

}  // namespace

void save_packed_model(const PackedModel& m, const std::string& path) {
  m.validate();
  GgufWriter w;
  const ModelConfig& c = m.cfg;
  w.add_string("general.architecture", "bitnet-kde");
  w.add_string("general.name", "bitnet-kde student");
  w.add_string("bitnet-kde.config", nlohmann::json(c).dump());
  w.add_string("bitnet-kde.ternary_layout", kLayout);
  if (m.trained_mode) w.add_string("bitnet-kde.quant_mode", to_string(*m.trained_mode));
  const std::pair<std::string, int64_t> ints[] = {{"bitnet-kde.block_count", c.n_layers},
                                                  {"bitnet-kde.embedding_length", c.d_model},
                                                  {"bitnet-kde.feed_forward_length", c.ffn_dim},
                                                  {"bitnet-kde.attention.head_count", c.n_heads},
                                                  {"bitnet-kde.attention.head_count_kv", c.n_kv_heads},
                                                  {"bitnet-kde.context_length", c.max_seq_len},
                                                  {"bitnet-kde.vocab_size", c.vocab_size}};
  for (const auto& [k, v] : ints) w.add_u64(k, static_cast<uint64_t>(v));

  add_table(w, "embed", m.embed);
  if (!c.tie_embeddings) add_table(w, "lm_head", m.lm_head);
  add_floats(w, "final_norm", m.final_norm);
  std::vector<std::pair<std::string, float>> scales;  // one per projection, stored after the layers
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const PackedLayer& l = m.layers[i];
    const std::string p = "layers." + std::to_string(i) + ".";
    add_floats(w, p + "attn_norm", l.attn_norm);
    add_floats(w, p + "attn_sub_norm", l.attn_sub_norm);
    add_floats(w, p + "ffn_norm", l.ffn_norm);
    add_floats(w, p + "ffn_sub_norm", l.ffn_sub_norm);
    const std::pair<const char*, const TernaryMatrix*> proj[] = {{"wq", &l.wq}, {"wk", &l.wk}, {"wv", &l.wv}, {"wo", &l.wo},
                                                                {"w_gate", &l.w_gate}, {"w_up", &l.w_up}, {"w_down", &l.w_down}};
    for (const auto& [name, mat] : proj) {
      const std::vector<uint8_t> bytes = row_major_bytes(*mat);  // the file is row-major whatever the memory holds
      w.add_tensor(p + name, {static_cast<uint64_t>(mat->row_bytes()), static_cast<uint64_t>(mat->rows)}, GgmlType::I8,
                   bytes.data(), bytes.size());
      scales.emplace_back(p + name + ".scale", mat->scale);
    }
  }
  for (const auto& [name, v] : scales) w.add_tensor(name, {1}, GgmlType::F32, &v, 4);
  w.write(path);
}

PackedModel load_packed_model(const std::string& path) {
  MappedFile f(path);
  Reader r(f.data(), f.size(), path);
  if (f.size() < 8 || r.u32() != kMagic) r.fail("not a GGUF file (bad magic)");
  if (const uint32_t v = r.u32(); v != kVersion) r.fail("GGUF version " + std::to_string(v) + ", expected 3");
  const uint64_t n_tensors = r.u64(), n_kv = r.u64();
  std::string arch, config, layout, mode;
  uint64_t align = kAlign;
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string key = r.str();
    const uint32_t type = r.u32();
    if (type == kString && (key == "general.architecture" || key == "bitnet-kde.config" || key == "bitnet-kde.ternary_layout")) {
      (key == "general.architecture" ? arch : key == "bitnet-kde.config" ? config : layout) = r.str();
    } else if (type == kString && key == "bitnet-kde.quant_mode") {
      mode = r.str();
    } else if (key == "general.alignment" && type == kU32) {
      align = r.u32();
    } else {
      r.skip_value(type);
    }
  }
  if (arch != "bitnet-kde") r.fail("architecture '" + arch + "' is not a bitnet-kde packed model");
  if (layout != kLayout) r.fail("ternary layout '" + layout + "' is not supported (this build reads " + kLayout + ")");
  if (align == 0) r.fail("alignment 0");
  struct Info {
    std::vector<uint64_t> dims;
    uint32_t type;
    uint64_t offset;
  };
  std::map<std::string, Info> infos;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const std::string name = r.str();
    Info in;
    const uint32_t nd = r.u32();
    if (nd > 4) r.fail("tensor " + name + " has " + std::to_string(nd) + " dimensions");
    for (uint32_t d = 0; d < nd; ++d) in.dims.push_back(r.u64());
    in.type = r.u32();
    in.offset = r.u64();
    infos[name] = in;
  }
  const uint64_t data_start = (r.pos() + align - 1) / align * align;

  PackedModel m;
  try {
    m.cfg = nlohmann::json::parse(config).get<ModelConfig>();
  } catch (const std::exception& e) {
    r.fail(std::string("bad bitnet-kde.config metadata: ") + e.what());
  }
  auto tensor = [&](const std::string& name, uint32_t type, std::vector<uint64_t> dims) -> const uint8_t* {
    auto it = infos.find(name);
    if (it == infos.end()) r.fail("missing tensor " + name);
    if (it->second.type != type || it->second.dims != dims) r.fail("tensor " + name + " has the wrong type or shape");
    uint64_t bytes = type == kTF32 ? 4 : type == kTBF16 ? 2 : 1;
    for (uint64_t d : dims) bytes *= d;
    if (data_start + it->second.offset + bytes > f.size()) r.fail("tensor " + name + " runs past the end of the file");
    return f.data() + data_start + it->second.offset;
  };
  auto floats = [&](const std::string& name, int64_t n) {
    const float* p = reinterpret_cast<const float*>(tensor(name, kTF32, {static_cast<uint64_t>(n)}));
    return std::vector<float>(p, p + n);
  };
  if (!mode.empty()) {
    if (mode != "a8" && mode != "a4") r.fail("bitnet-kde.quant_mode '" + mode + "' is not a8 or a4");
    m.trained_mode = quant_mode_from_string(mode);
  }
  const ModelConfig& c = m.cfg;
  const int64_t D = c.d_model, F = c.ffn_dim, KV = c.n_kv_heads * c.head_dim(), V = c.vocab_size;
  auto table = [&](const std::string& name, EmbeddingTable& t) {
    auto it = infos.find(name);
    if (it == infos.end()) r.fail("missing tensor " + name);
    const TableFormat fmt = it->second.type == kTF32 ? TableFormat::F32 : it->second.type == kTBF16 ? TableFormat::BF16 : TableFormat::I8;
    t.allocate(fmt, V, D);
    std::memcpy(t.data.data(), tensor(name, it->second.type, {static_cast<uint64_t>(D), static_cast<uint64_t>(V)}), t.data.bytes());
    if (fmt == TableFormat::I8) t.row_scale = floats(name + ".row_scale", V);
  };
  auto ternary = [&](const std::string& name, TernaryMatrix& t, int64_t rows, int64_t cols) {
    t.allocate(rows, cols);
    std::memcpy(t.packed.data(), tensor(name, kTI8, {static_cast<uint64_t>(t.row_bytes()), static_cast<uint64_t>(rows)}), t.bytes());
    t.scale = floats(name + ".scale", 1)[0];
    validate_ternary(t, path + ": " + name);
  };
  table("embed", m.embed);
  if (!c.tie_embeddings) table("lm_head", m.lm_head);
  m.final_norm = floats("final_norm", D);
  m.layers.resize(static_cast<size_t>(c.n_layers));
  for (int64_t i = 0; i < c.n_layers; ++i) {
    PackedLayer& l = m.layers[i];
    const std::string p = "layers." + std::to_string(i) + ".";
    l.attn_norm = floats(p + "attn_norm", D);
    l.attn_sub_norm = floats(p + "attn_sub_norm", D);
    l.ffn_norm = floats(p + "ffn_norm", D);
    l.ffn_sub_norm = floats(p + "ffn_sub_norm", F);
    ternary(p + "wq", l.wq, D, D);
    ternary(p + "wk", l.wk, KV, D);
    ternary(p + "wv", l.wv, KV, D);
    ternary(p + "wo", l.wo, D, D);
    ternary(p + "w_gate", l.w_gate, F, D);
    ternary(p + "w_up", l.w_up, F, D);
    ternary(p + "w_down", l.w_down, D, F);
  }
  m.validate();
  m.use_engine_layout();
  return m;
}

}  // namespace bkd

#include "core/format/hf_bitnet.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>

#include <nlohmann/json.hpp>

#include "core/format/safetensors.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd {
namespace {

using nlohmann::json;

// The widths a tensor's shape is made of.
enum class Width { D, KV, F };
int64_t width(Width w, const ModelConfig& c) {
  return w == Width::D ? c.d_model : w == Width::KV ? c.n_kv_heads * c.head_dim() : c.ffn_dim;
}

struct Projection {
  const char* hf;  // name under model.layers.N.
  TernaryMatrix PackedLayer::*member;
  Width rows, cols;
};
const Projection kProjections[] = {
    {"self_attn.q_proj", &PackedLayer::wq, Width::D, Width::D},     {"self_attn.k_proj", &PackedLayer::wk, Width::KV, Width::D},
    {"self_attn.v_proj", &PackedLayer::wv, Width::KV, Width::D},    {"self_attn.o_proj", &PackedLayer::wo, Width::D, Width::D},
    {"mlp.gate_proj", &PackedLayer::w_gate, Width::F, Width::D},    {"mlp.up_proj", &PackedLayer::w_up, Width::F, Width::D},
    {"mlp.down_proj", &PackedLayer::w_down, Width::D, Width::F},
};
struct Norm {
  const char* hf;
  std::vector<float> PackedLayer::*member;
  Width size;
};
const Norm kNorms[] = {{"input_layernorm", &PackedLayer::attn_norm, Width::D},
                       {"self_attn.attn_sub_norm", &PackedLayer::attn_sub_norm, Width::D},
                       {"post_attention_layernorm", &PackedLayer::ffn_norm, Width::D},
                       {"mlp.ffn_sub_norm", &PackedLayer::ffn_sub_norm, Width::F}};

std::string layer_prefix(size_t i) { return "model.layers." + std::to_string(i) + "."; }

// A folder this writer may replace: absent, empty, or an earlier Hugging Face BitNet export.
bool replaceable(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (!fs::exists(dir)) return true;
  if (!fs::is_directory(dir)) return false;
  if (fs::is_empty(dir)) return true;
  try {
    return json::parse(read_file((dir / "config.json").string())).value("model_type", "") == "bitnet";
  } catch (const std::exception&) {
    return false;
  }
}

// Fills a hidden temporary sibling of `dir` and swaps it in (old folder -> backup, new -> dir,
// backup removed): `dir` never holds a half export, and a folder that is not an earlier export is
// never deleted.
void write_folder_atomically(const std::string& dir_arg, const std::function<void(const std::string&)>& fill) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::absolute(fs::path(dir_arg)).lexically_normal();
  const fs::path target = dir.has_filename() ? dir : dir.parent_path();  // "out/" names "out"
  if (target.filename().empty() || target.filename() == "." || target.filename() == ".." || target == target.root_path())
    throw UsageError("cannot write a Hugging Face folder at '" + dir_arg + "'", "pass a new folder name with --out");
  if (!replaceable(target))
    throw UsageError("'" + target.string() + "' exists and is not an earlier Hugging Face BitNet export; refusing to replace it",
                     "pass a new folder name with --out, or remove it yourself");
  const std::string pid = std::to_string(::getpid());
  const fs::path tmp = target.parent_path() / ("." + target.filename().string() + ".tmp." + pid);
  const fs::path backup = target.parent_path() / ("." + target.filename().string() + ".old." + pid);
  try {
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    fill(tmp.string());
    const bool had_old = fs::exists(target);
    if (had_old) fs::rename(target, backup);
    fs::rename(tmp, target);
    if (had_old) fs::remove_all(backup);
  } catch (const fs::filesystem_error& e) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw Error("cannot write " + target.string() + ": " + e.what(), "check that its parent folder is writable");
  } catch (...) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    throw;
  }
}

// Rows i*R + r (i = 0..3, R = rows / 4) of column c share byte (r, c), 2 bits each, code = w + 1.
std::vector<uint8_t> pack_rows_in_fours(const TernaryMatrix& m) {
  const int64_t R = m.rows / 4;
  std::vector<uint8_t> out(static_cast<size_t>(R * m.cols), 0);
  std::vector<int8_t> w(static_cast<size_t>(m.cols));
  for (int64_t row = 0; row < m.rows; ++row) {
    if (!unpack_ternary_row(m, row, w.data())) throw Error("ternary matrix holds an invalid code");
    const int64_t i = row / R, r = row % R;
    for (int64_t c = 0; c < m.cols; ++c) out[static_cast<size_t>(r * m.cols + c)] |= static_cast<uint8_t>((w[c] + 1) << (2 * i));
  }
  return out;
}

TernaryMatrix unpack_rows_in_fours(const uint8_t* p, int64_t rows, int64_t cols, float scale, const std::string& what) {
  const int64_t R = rows / 4;
  std::vector<int8_t> w(static_cast<size_t>(rows * cols));
  for (int64_t row = 0; row < rows; ++row) {
    const int64_t i = row / R, r = row % R;
    for (int64_t c = 0; c < cols; ++c) {
      const int code = (p[r * cols + c] >> (2 * i)) & 3;
      if (code == 3) throw Error(what + ": code 3 at row " + std::to_string(row) + ", column " + std::to_string(c) + " (not ternary)",
                                 "re-export the model");
      w[static_cast<size_t>(row * cols + c)] = static_cast<int8_t>(code - 1);
    }
  }
  return pack_ternary(w.data(), rows, cols, scale);
}

std::vector<float> floats_of(const SafetensorsTensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  if (t.dtype == "F32") {
    std::memcpy(v.data(), t.data, v.size() * 4);
  } else {  // BF16
    for (size_t i = 0; i < v.size(); ++i) {
      uint16_t h;
      std::memcpy(&h, t.data + 2 * i, 2);
      v[i] = bf16_to_float(h);
    }
  }
  return v;
}

const SafetensorsTensor& float_tensor(const SafetensorsFile& f, const std::string& name, const std::vector<int64_t>& shape) {
  const SafetensorsTensor* t = f.find(name);
  return f.get(name, t && t->dtype == "BF16" ? "BF16" : "F32", shape);
}

}  // namespace

std::vector<std::string> hf_export_problems(const ModelConfig& c) {
  std::vector<std::string> p;
  if (!c.bitlinear) p.push_back("the model is a full-precision teacher, not a BitNet student");
  const int64_t kv = c.n_kv_heads * c.head_dim();
  for (const auto& [what, rows] : {std::pair<const char*, int64_t>{"d_model", c.d_model}, {"the k/v width", kv}, {"ffn_dim", c.ffn_dim}})
    if (rows % 4 != 0)
      p.push_back(std::string(what) + " = " + std::to_string(rows) + " is not a multiple of 4: the packed layout holds 4 rows per byte");
  return p;
}

bool is_hf_folder(const std::string& path) { return dir_exists(path) && file_exists(join_path(path, "config.json")); }

void write_hf_bitnet(const PackedModel& m, const SpmTokenizer& tok, const std::string& dir) {
  m.validate();
  const ModelConfig& c = m.cfg;
  if (const auto problems = hf_export_problems(c); !problems.empty()) {
    std::string why;
    for (const auto& s : problems) why += (why.empty() ? "" : "; ") + s;
    throw UsageError("cannot export this student in the Hugging Face BitNet layout: " + why, "change the student config");
  }
  if (tok.vocab_size() != c.vocab_size)
    throw Error("the student tokenizer has " + std::to_string(tok.vocab_size()) + " pieces but the model's vocabulary is " +
                    std::to_string(c.vocab_size),
                "export with the tokenizer the student was trained with (STUDENT_TOKENIZER)");
  const SpmTokenizer::Vocab v = tok.vocab();
  const bool bf16 = m.embed.format == TableFormat::BF16;

  SafetensorsWriter st;
  st.set_metadata("format", "pt");
  auto floats = [&](const std::string& name, const std::vector<float>& x) {
    st.add(name, "F32", {static_cast<int64_t>(x.size())}, x.data(), x.size() * 4);
  };
  const EmbeddingTable& e = m.embed;
  if (e.format == TableFormat::I8) {  // written dequantized: the values the engine computes with
    std::vector<float> deq(static_cast<size_t>(e.rows * e.cols));
    for (int64_t r = 0; r < e.rows; ++r) e.lookup(r, deq.data() + r * e.cols);
    st.add("model.embed_tokens.weight", "F32", {e.rows, e.cols}, deq.data(), deq.size() * 4);
  } else {
    st.add("model.embed_tokens.weight", bf16 ? "BF16" : "F32", {e.rows, e.cols}, e.data.data(), e.data.bytes());
  }
  if (!c.tie_embeddings) {
    const EmbeddingTable& h = m.lm_head;
    std::vector<float> deq(static_cast<size_t>(h.rows * h.cols));
    for (int64_t r = 0; r < h.rows; ++r) h.lookup(r, deq.data() + r * h.cols);
    st.add("lm_head.weight", "F32", {h.rows, h.cols}, deq.data(), deq.size() * 4);
  }
  floats("model.norm.weight", m.final_norm);
  for (size_t i = 0; i < m.layers.size(); ++i) {
    const PackedLayer& l = m.layers[i];
    const std::string p = layer_prefix(i);
    for (const Norm& n : kNorms) floats(p + n.hf + ".weight", l.*n.member);
    for (const Projection& pr : kProjections) {
      const TernaryMatrix& t = l.*pr.member;
      const std::vector<uint8_t> packed = pack_rows_in_fours(t);
      st.add(p + pr.hf + ".weight", "U8", {t.rows / 4, t.cols}, packed.data(), packed.size());
      st.add(p + pr.hf + ".weight_scale", "F32", {1}, &t.scale, 4);
    }
  }

  json config = {{"architectures", {"BitNetForCausalLM"}},
                 {"model_type", "bitnet"},
                 {"vocab_size", c.vocab_size},
                 {"hidden_size", c.d_model},
                 {"intermediate_size", c.ffn_dim},
                 {"num_hidden_layers", c.n_layers},
                 {"num_attention_heads", c.n_heads},
                 {"num_key_value_heads", c.n_kv_heads},
                 {"hidden_act", c.ffn_activation == FfnActivation::Silu ? "silu" : "relu2"},
                 {"max_position_embeddings", c.max_seq_len},
                 {"rms_norm_eps", c.norm_eps},
                 {"rope_theta", c.rope_theta},
                 {"tie_word_embeddings", c.tie_embeddings},
                 {"attention_bias", false},
                 {"bos_token_id", v.bos},
                 {"eos_token_id", v.eos},
                 {"torch_dtype", bf16 ? "bfloat16" : "float32"},
                 {"use_cache", true},
                 {"quantization_config", {{"quant_method", "bitnet"}, {"linear_class", "autobitlinear"}, {"quantization_mode", "offline"}}}};
  if (m.trained_mode) config["bitnet_kde"] = {{"trained_mode", to_string(*m.trained_mode)}};
  const json generation = {{"_from_model_config", true}, {"bos_token_id", v.bos}, {"eos_token_id", v.eos}};
  auto piece = [&](int32_t id) { return id >= 0 ? json(v.pieces[static_cast<size_t>(id)]) : json(nullptr); };
  const json tokenizer_config = {{"tokenizer_class", "LlamaTokenizer"}, {"bos_token", piece(v.bos)},  {"eos_token", piece(v.eos)},
                                 {"unk_token", piece(v.unk)},            {"pad_token", nullptr},       {"add_bos_token", false},  // no BOS in training
                                 {"add_eos_token", false},               {"legacy", false},            {"add_prefix_space", true},
                                 {"model_max_length", c.max_seq_len},    {"clean_up_tokenization_spaces", false}};
  const json special = {{"bos_token", piece(v.bos)}, {"eos_token", piece(v.eos)}, {"unk_token", piece(v.unk)}};

  write_folder_atomically(dir, [&](const std::string& tmp) {
    st.write(join_path(tmp, "model.safetensors"));
    write_file_atomic(join_path(tmp, "config.json"), config.dump(2) + "\n");
    write_file_atomic(join_path(tmp, "generation_config.json"), generation.dump(2) + "\n");
    write_file_atomic(join_path(tmp, "tokenizer_config.json"), tokenizer_config.dump(2) + "\n");
    write_file_atomic(join_path(tmp, "special_tokens_map.json"), special.dump(2) + "\n");
    write_file_atomic(join_path(tmp, "tokenizer.model"), tok.serialized());
  });
}

namespace {

// config.json values, each checked for its type; errors name the key.
class ConfigJson {
 public:
  ConfigJson(json j, std::string path) : j_(std::move(j)), path_(std::move(path)) {
    if (!j_.is_object()) fail("the file is not a JSON object");
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(path_ + ": " + what, "re-export the model with `bitnet-kde export --format hf`");
  }
  bool has(const std::string& k) const { return j_.contains(k) && !j_[k].is_null(); }
  const json& at(const std::string& k) const {
    if (!has(k)) fail("missing key " + k);
    return j_[k];
  }
  int64_t integer(const std::string& k) const {
    const json& v = at(k);
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) fail(k + " is not a positive integer");
    return v.get<int64_t>();
  }
  double number(const std::string& k) const {
    const json& v = at(k);
    if (!v.is_number() || !(v.get<double>() > 0)) fail(k + " is not a positive number");
    return v.get<double>();
  }
  std::string string(const std::string& k) const {
    const json& v = at(k);
    if (!v.is_string()) fail(k + " is not a string");
    return v.get<std::string>();
  }
  bool boolean(const std::string& k, bool fallback) const {
    if (!has(k)) return fallback;
    if (!j_[k].is_boolean()) fail(k + " is not true or false");
    return j_[k].get<bool>();
  }
  ConfigJson object(const std::string& k) const {
    if (!at(k).is_object()) fail(k + " is not an object");
    return ConfigJson(j_[k], path_ + " (" + k + ")");
  }

 private:
  json j_;
  std::string path_;
};

ModelConfig model_config_of(const ConfigJson& j, std::optional<QuantMode>& trained_mode) {
  if (j.string("model_type") != "bitnet") j.fail("model_type is not \"bitnet\"");
  const ConfigJson q = j.object("quantization_config");
  if (q.string("quant_method") != "bitnet" || q.string("linear_class") != "autobitlinear" ||
      q.string("quantization_mode") != "offline" || q.boolean("use_rms_norm", false))
    j.fail("quantization_config is not {quant_method bitnet, linear_class autobitlinear, quantization_mode offline} "
           "(packed weights, output times weight_scale)");
  if (j.boolean("attention_bias", false) || j.boolean("mlp_bias", false)) j.fail("biases are not supported by the packed engine");
  if (j.has("rope_scaling")) j.fail("rope_scaling is not supported by the packed engine");
  ModelConfig c;
  c.vocab_size = j.integer("vocab_size");
  c.d_model = j.integer("hidden_size");
  c.ffn_dim = j.integer("intermediate_size");
  c.n_layers = j.integer("num_hidden_layers");
  c.n_heads = j.integer("num_attention_heads");
  c.n_kv_heads = j.has("num_key_value_heads") ? j.integer("num_key_value_heads") : c.n_heads;
  c.max_seq_len = j.integer("max_position_embeddings");
  c.norm_eps = j.number("rms_norm_eps");
  // BitNetConfig's default RoPE base is 500000; newer configs nest it under rope_parameters.
  c.rope_theta = j.has("rope_theta") ? j.number("rope_theta")
                 : j.has("rope_parameters") ? j.object("rope_parameters").number("rope_theta") : 500000.0;
  c.tie_embeddings = j.boolean("tie_word_embeddings", false);
  const std::string act = j.has("hidden_act") ? j.string("hidden_act") : "relu2";
  if (act != "relu2" && act != "silu") j.fail("hidden_act " + act + " is not relu2 or silu");
  c.ffn_activation = ffn_activation_from_string(act);
  c.bitlinear = true;
  if (j.has("head_dim") && j.integer("head_dim") * c.n_heads != c.d_model) j.fail("head_dim * num_attention_heads != hidden_size");
  if (j.has("bitnet_kde")) {
    const std::string mode = j.object("bitnet_kde").string("trained_mode");
    if (mode != "a8" && mode != "a4") j.fail("bitnet_kde.trained_mode is not a8 or a4");
    trained_mode = quant_mode_from_string(mode);
  }
  try {
    c.validate();
  } catch (const Error& e) {
    j.fail(e.what());
  }
  return c;
}

}  // namespace

PackedModel read_hf_bitnet(const std::string& dir) {
  const std::string cfg_path = join_path(dir, "config.json");
  if (!file_exists(cfg_path)) throw Error(dir + " is not a Hugging Face model folder (no config.json)", "pass the folder `export --format hf` wrote");
  json j;
  try {
    j = json::parse(read_file(cfg_path));
  } catch (const std::exception& e) {
    throw Error(cfg_path + ": not JSON: " + e.what(), "re-export the model");
  }
  PackedModel m;
  m.cfg = model_config_of(ConfigJson(j, cfg_path), m.trained_mode);
  const ModelConfig& c = m.cfg;
  const SafetensorsFile f(join_path(dir, "model.safetensors"));
  const int64_t D = c.d_model, V = c.vocab_size;
  auto table = [&](const std::string& name, EmbeddingTable& t) {
    const SafetensorsTensor& s = float_tensor(f, name, {V, D});
    t.allocate(s.dtype == "BF16" ? TableFormat::BF16 : TableFormat::F32, V, D);
    std::memcpy(t.data.data(), s.data, t.data.bytes());
  };
  table("model.embed_tokens.weight", m.embed);
  if (!c.tie_embeddings) table("lm_head.weight", m.lm_head);
  m.final_norm = floats_of(float_tensor(f, "model.norm.weight", {D}));
  m.layers.resize(static_cast<size_t>(c.n_layers));
  for (size_t i = 0; i < m.layers.size(); ++i) {
    PackedLayer& l = m.layers[i];
    const std::string p = layer_prefix(i);
    for (const Norm& n : kNorms) l.*n.member = floats_of(float_tensor(f, p + n.hf + ".weight", {width(n.size, c)}));
    for (const Projection& pr : kProjections) {
      const std::string name = p + pr.hf;
      const int64_t rows = width(pr.rows, c), cols = width(pr.cols, c);
      if (rows % 4 != 0) throw Error(f.path() + ": " + name + " has " + std::to_string(rows) + " rows, not a multiple of 4", "re-export the model");
      const SafetensorsTensor& w = f.get(name + ".weight", "U8", {rows / 4, cols});
      const float scale = floats_of(float_tensor(f, name + ".weight_scale", {1}))[0];
      if (!(scale > 0) || !std::isfinite(scale))
        throw Error(f.path() + ": " + name + ".weight_scale is not a positive finite number", "re-export the model");
      l.*pr.member = unpack_rows_in_fours(w.data, rows, cols, scale, f.path() + ": " + name + ".weight");
    }
  }
  m.validate();
  m.use_engine_layout();
  return m;
}

}  // namespace bkd

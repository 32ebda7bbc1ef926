#include "core/model/model_config.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "core/util/error.h"

namespace bkd {

std::string to_string(QuantMode m) {
  switch (m) {
    case QuantMode::FullPrecision: return "fp";
    case QuantMode::TernaryA8: return "a8";
    case QuantMode::TernaryA4: return "a4";
  }
  return "?";
}

QuantMode quant_mode_from_string(const std::string& s) {
  if (s == "fp") return QuantMode::FullPrecision;
  if (s == "a8") return QuantMode::TernaryA8;
  if (s == "a4") return QuantMode::TernaryA4;
  throw Error("unknown quantization mode '" + s + "'", "use fp, a8 or a4");
}

std::string to_string(FfnActivation a) { return a == FfnActivation::Silu ? "silu" : "relu2"; }

FfnActivation ffn_activation_from_string(const std::string& s) {
  if (s == "relu2") return FfnActivation::Relu2;
  if (s == "silu") return FfnActivation::Silu;
  throw Error("unknown FFN activation '" + s + "'", "use relu2 or silu");
}

int64_t ModelConfig::parameter_count() const {
  const int64_t q = q_dim(), kv = kv_dim();
  const int64_t attn = d_model * q * 2 + d_model * kv * 2;  // q, o, k, v
  const int64_t ffn = 3 * d_model * ffn_dim;                 // gate, up, down
  int64_t norms = 2 * d_model;                               // pre-norms
  if (sub_norm) norms += q + ffn_dim;
  if (qk_norm) norms += 2 * head_dim();
  const int64_t biases = (qkv_bias ? q + 2 * kv : 0) + (o_bias ? d_model : 0);
  const int64_t emb = vocab_size * d_model * (tie_embeddings ? 1 : 2);
  return n_layers * (attn + ffn + norms + biases) + emb + d_model;
}

bool ModelConfig::has_hf_features() const {
  return head_dim_override > 0 || !sub_norm || qkv_bias || o_bias || qk_norm ||
         rope_scaling.type != RopeScaling::Type::None;
}

std::vector<double> rope_inv_freq(const ModelConfig& c) {
  const int64_t hd = c.head_dim();
  std::vector<double> inv(size_t(hd / 2));
  for (int64_t i = 0; i < hd / 2; ++i) inv[size_t(i)] = std::pow(c.rope_theta, -2.0 * double(i) / double(hd));
  const RopeScaling& r = c.rope_scaling;
  if (r.type != RopeScaling::Type::Llama3) return inv;
  const double pi = 3.14159265358979323846, old_len = double(r.original_max_position);
  const double low_wavelen = old_len / r.low_freq_factor, high_wavelen = old_len / r.high_freq_factor;
  for (double& f : inv) {
    const double wavelen = 2.0 * pi / f;
    if (wavelen > low_wavelen) {
      f /= r.factor;  // low frequencies: stretched to the new context
    } else if (wavelen >= high_wavelen) {  // between: interpolate
      const double smooth = (old_len / wavelen - r.low_freq_factor) / (r.high_freq_factor - r.low_freq_factor);
      f = (1.0 - smooth) * f / r.factor + smooth * f;
    }  // high frequencies: kept
  }
  return inv;
}

void ModelConfig::validate() const {
  auto need = [](bool ok, const std::string& msg) {
    if (!ok) throw Error("invalid model config: " + msg);
  };
  need(vocab_size > 0 && d_model > 0 && n_layers > 0 && n_heads > 0 && n_kv_heads > 0 && ffn_dim > 0,
       "every size must be positive");
  need(head_dim_override >= 0, "head_dim must not be negative");
  need(head_dim_override > 0 || d_model % n_heads == 0, "d_model must be divisible by n_heads (or head_dim given)");
  if (rope_scaling.type == RopeScaling::Type::Llama3)
    need(rope_scaling.factor >= 1.0 && rope_scaling.low_freq_factor > 0 &&
             rope_scaling.high_freq_factor > rope_scaling.low_freq_factor && rope_scaling.original_max_position > 0,
         "llama3 rope scaling needs factor >= 1, 0 < low_freq_factor < high_freq_factor, original_max_position > 0");
  need(n_heads % n_kv_heads == 0, "n_heads must be divisible by n_kv_heads");
  need(head_dim() % 2 == 0, "head_dim must be even for RoPE");
  need(max_seq_len > 0, "max_seq_len must be positive");
}

void to_json(nlohmann::json& j, const ModelConfig& c) {
  j = {{"vocab_size", c.vocab_size}, {"d_model", c.d_model},     {"n_layers", c.n_layers},
       {"n_heads", c.n_heads},       {"n_kv_heads", c.n_kv_heads}, {"ffn_dim", c.ffn_dim},
       {"max_seq_len", c.max_seq_len}, {"rope_theta", c.rope_theta}, {"norm_eps", c.norm_eps},
       {"tie_embeddings", c.tie_embeddings}, {"bitlinear", c.bitlinear}, {"ffn_activation", to_string(c.ffn_activation)}};
  // The Hugging Face switches are written only when on, so BitNet configs stay as they were.
  if (c.head_dim_override > 0) j["head_dim"] = c.head_dim_override;
  if (!c.sub_norm) j["sub_norm"] = false;
  if (c.qkv_bias) j["qkv_bias"] = true;
  if (c.o_bias) j["o_bias"] = true;
  if (c.qk_norm) j["qk_norm"] = true;
  if (c.rope_scaling.type == RopeScaling::Type::Llama3)
    j["rope_scaling"] = {{"type", "llama3"},
                         {"factor", c.rope_scaling.factor},
                         {"low_freq_factor", c.rope_scaling.low_freq_factor},
                         {"high_freq_factor", c.rope_scaling.high_freq_factor},
                         {"original_max_position", c.rope_scaling.original_max_position}};
}

void from_json(const nlohmann::json& j, ModelConfig& c) {
  c.vocab_size = j.at("vocab_size").get<int64_t>();
  c.d_model = j.at("d_model").get<int64_t>();
  c.n_layers = j.at("n_layers").get<int64_t>();
  c.n_heads = j.at("n_heads").get<int64_t>();
  c.n_kv_heads = j.at("n_kv_heads").get<int64_t>();
  c.ffn_dim = j.at("ffn_dim").get<int64_t>();
  c.max_seq_len = j.at("max_seq_len").get<int64_t>();
  c.rope_theta = j.at("rope_theta").get<double>();
  c.norm_eps = j.at("norm_eps").get<double>();
  c.tie_embeddings = j.at("tie_embeddings").get<bool>();
  c.bitlinear = j.at("bitlinear").get<bool>();
  c.ffn_activation = ffn_activation_from_string(j.value("ffn_activation", std::string("relu2")));
  c.head_dim_override = j.value("head_dim", int64_t(0));
  c.sub_norm = j.value("sub_norm", true);
  c.qkv_bias = j.value("qkv_bias", false);
  c.o_bias = j.value("o_bias", false);
  c.qk_norm = j.value("qk_norm", false);
  c.rope_scaling = RopeScaling{};
  if (j.contains("rope_scaling")) {
    const auto& r = j.at("rope_scaling");
    if (r.at("type").get<std::string>() != "llama3")
      throw Error("model config: unknown rope_scaling type " + r.at("type").dump(), "only llama3 is supported");
    c.rope_scaling.type = RopeScaling::Type::Llama3;
    c.rope_scaling.factor = r.at("factor").get<double>();
    c.rope_scaling.low_freq_factor = r.at("low_freq_factor").get<double>();
    c.rope_scaling.high_freq_factor = r.at("high_freq_factor").get<double>();
    c.rope_scaling.original_max_position = r.at("original_max_position").get<int64_t>();
  }
  c.validate();
}

}  // namespace bkd

#include "core/model/model_config.h"

#include <nlohmann/json.hpp>

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
  const int64_t kv = n_kv_heads * head_dim();
  const int64_t attn = d_model * d_model * 2 + d_model * kv * 2;  // q, o, k, v
  const int64_t ffn = 3 * d_model * ffn_dim;                         // gate, up, down
  const int64_t norms = 2 * d_model + d_model + ffn_dim;              // pre-norms + SubLNs
  const int64_t emb = vocab_size * d_model * (tie_embeddings ? 1 : 2);
  return n_layers * (attn + ffn + norms) + emb + d_model;
}

void ModelConfig::validate() const {
  auto need = [](bool ok, const std::string& msg) {
    if (!ok) throw Error("invalid model config: " + msg);
  };
  need(vocab_size > 0 && d_model > 0 && n_layers > 0 && n_heads > 0 && n_kv_heads > 0 && ffn_dim > 0,
       "every size must be positive");
  need(d_model % n_heads == 0, "d_model must be divisible by n_heads");
  need(n_heads % n_kv_heads == 0, "n_heads must be divisible by n_kv_heads");
  need(head_dim() % 2 == 0, "head_dim must be even for RoPE");
  need(max_seq_len > 0, "max_seq_len must be positive");
}

void to_json(nlohmann::json& j, const ModelConfig& c) {
  j = {{"vocab_size", c.vocab_size}, {"d_model", c.d_model},     {"n_layers", c.n_layers},
       {"n_heads", c.n_heads},       {"n_kv_heads", c.n_kv_heads}, {"ffn_dim", c.ffn_dim},
       {"max_seq_len", c.max_seq_len}, {"rope_theta", c.rope_theta}, {"norm_eps", c.norm_eps},
       {"tie_embeddings", c.tie_embeddings}, {"bitlinear", c.bitlinear}, {"ffn_activation", to_string(c.ffn_activation)}};
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
  c.validate();
}

}  // namespace bkd

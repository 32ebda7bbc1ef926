#pragma once
// Architecture of the one transformer the project uses, as the full-precision teacher and as the
// BitNet student (pre-RMSNorm blocks + SubLN before o_proj/down_proj, RoPE, gated squared-ReLU FFN,
// no biases). Shared by the LibTorch side (training) and the packed engine (inference), and stored
// in checkpoints and exported model files.
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace bkd {

// How BitLinear layers quantize. FullPrecision: plain linear (the teacher).
// TernaryA8: ternary weights, 8-bit absmax activations on every projection input.
// TernaryA4: ternary weights, 4-bit absmean on Q/K/V and up/gate inputs, 8-bit on o_proj/down_proj.
enum class QuantMode { FullPrecision, TernaryA8, TernaryA4 };

std::string to_string(QuantMode m);
QuantMode quant_mode_from_string(const std::string& s);  // "fp" | "a8" | "a4"; throws Error otherwise

// The FFN gate: relu(g)^2 * u (BitNet b1.58's squared ReLU) or silu(g) * u (SwiGLU, which
// llama.cpp's bitnet graph computes; core/format/llama_cpp_gguf.h).
enum class FfnActivation { Relu2, Silu };
std::string to_string(FfnActivation a);
FfnActivation ffn_activation_from_string(const std::string& s);  // "relu2" | "silu"; throws Error otherwise

struct ModelConfig {
  int64_t vocab_size = 8000;
  int64_t d_model = 256;
  int64_t n_layers = 6;
  int64_t n_heads = 8;
  int64_t n_kv_heads = 8;
  int64_t ffn_dim = 704;
  int64_t max_seq_len = 256;
  double rope_theta = 10000.0;
  double norm_eps = 1e-5;
  bool tie_embeddings = true;
  FfnActivation ffn_activation = FfnActivation::Relu2;  // files without the key hold relu2 models
  bool bitlinear = true;  // false: the full-precision teacher (no quantizers at all)

  int64_t head_dim() const { return d_model / n_heads; }
  int64_t parameter_count() const;
  void validate() const;  // throws Error on inconsistent shapes
};

void to_json(nlohmann::json& j, const ModelConfig& c);
void from_json(const nlohmann::json& j, ModelConfig& c);

}  // namespace bkd

#pragma once
// Architecture of the one transformer the project uses, as the full-precision teacher and as the
// BitNet student (pre-RMSNorm blocks + SubLN before o_proj/down_proj, RoPE, gated squared-ReLU FFN,
// no biases). Shared by the LibTorch side (training) and the packed engine (inference), and stored
// in checkpoints and exported model files.
// Teachers loaded from Hugging Face folders (core/model/hf_config.h) use the same blocks with some
// parts switched: no SubLN, q/k/v (and o) biases, per-head q/k RMSNorm, an explicit head_dim, RoPE
// frequencies rescaled the Llama-3 way. has_hf_features() says whether any is on; the packed engine
// and the exporters accept only the BitNet layout. A student started from such a teacher
// (STUDENT_INIT=teacher) keeps its switches and trains in LibTorch; the engine refuses it by name.
#include <cstdint>
#include <string>
#include <vector>

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

// RoPE frequency rescaling for long contexts. Llama3: wavelengths longer than
// original_max_position / low_freq_factor are divided by `factor`, shorter than
// original_max_position / high_freq_factor are kept, and those between are interpolated smoothly
// (Hugging Face's "llama3" rope_type).
struct RopeScaling {
  enum class Type { None, Llama3 } type = Type::None;
  double factor = 1.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_max_position = 8192;
};

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
  // Hugging Face teachers (all off for the project's own models; absent keys in files mean off).
  int64_t head_dim_override = 0;  // 0: d_model / n_heads (Qwen3 sets head_dim * n_heads != d_model)
  bool sub_norm = true;           // SubLN before o_proj and down_proj (BitNet); off for Llama-family teachers
  bool qkv_bias = false;          // biases on q/k/v (Qwen2; Llama with attention_bias)
  bool o_bias = false;            // bias on o_proj (Llama with attention_bias)
  bool qk_norm = false;           // RMSNorm over each head's q and k before RoPE (Qwen3)
  RopeScaling rope_scaling;

  int64_t head_dim() const { return head_dim_override > 0 ? head_dim_override : d_model / n_heads; }
  int64_t q_dim() const { return n_heads * head_dim(); }    // rows of wq, columns of wo
  int64_t kv_dim() const { return n_kv_heads * head_dim(); }
  bool has_hf_features() const;  // any of the Hugging Face switches above differs from BitNet's layout
  int64_t parameter_count() const;
  void validate() const;  // throws Error on inconsistent shapes
};

// RoPE inverse frequencies theta^(-2i/hd) for i < hd/2, with the configured rescaling applied.
std::vector<double> rope_inv_freq(const ModelConfig& c);

void to_json(nlohmann::json& j, const ModelConfig& c);
void from_json(const nlohmann::json& j, ModelConfig& c);

}  // namespace bkd

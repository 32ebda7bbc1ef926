#pragma once
// The one transformer of the project: the full-precision teacher (QuantMode::FullPrecision) and the
// BitNet student (TernaryA8 / TernaryA4), following BitNet b1.58 2B4T:
//   x = embed(ids)
//   per block:  h = x + wo(attn_sub_norm(attention(rope(wq a), rope(wk a), wv a))),  a = attn_norm(x)
//               x = h + w_down(ffn_sub_norm(act(w_gate f) * w_up f)),             f = ffn_norm(h)
//               act(g) = silu(g) or relu(g)^2 (cfg.ffn_activation; STUDENT_FFN_ACTIVATION, default silu;
//               a config without the key is relu2, what every model before the option was)
//   logits = lm_head(final_norm(x))     (lm_head = embed.weight when tie_embeddings)
// RMSNorm y = x / sqrt(mean(x^2) + eps) * gain. No biases. Grouped-query attention when
// n_kv_heads < n_heads (query head h uses kv head h / (n_heads / n_kv_heads)).
// RoPE, "rotate-half" convention: for head dim hd and i < hd/2, the pair (x[i], x[i + hd/2]) at
// position p is rotated by angle p * theta^(-2i/hd).
// BitLinear (every projection inside the blocks; embeddings and head stay full precision):
//   TernaryA8: linear(a8(x), ternary(W)) everywhere.
//   TernaryA4: a4 on the inputs of wq/wk/wv and w_gate/w_up; a8 on the inputs of wo and w_down.
// Parameter names: embed, lm_head (untied only), final_norm, layers.<i>.{attn_norm, wq, wk, wv,
// attn_sub_norm, wo, ffn_norm, w_gate, w_up, ffn_sub_norm, w_down}; linear weights are [out, in].
// Hugging Face teachers (model_config.h) may drop the SubLNs and add layers.<i>.{bq, bk, bv, bo,
// q_norm, k_norm}: q = q_norm(wq a + bq) per head before RoPE, likewise k; wq is [n_heads * head_dim, d].
#include <torch/torch.h>

#include <functional>
#include <vector>

#include "core/model/model_config.h"

namespace bkd {

// How a new model's weights start: drawn at random (training from scratch), or left uninitialized
// for a loader that overwrites every one (a large Hugging Face teacher is not drawn first).
enum class WeightInit { Random, Uninitialized };

struct BlockImpl : torch::nn::Module {
  BlockImpl(const ModelConfig& cfg, int64_t layer_index, WeightInit init = WeightInit::Random);
  torch::Tensor attn_norm, wq, wk, wv, attn_sub_norm, wo;
  torch::Tensor ffn_norm, w_gate, w_up, ffn_sub_norm, w_down;
  // Hugging Face teachers only (undefined otherwise; ModelConfig says which exist).
  torch::Tensor bq, bk, bv, bo;  // qkv_bias, o_bias
  torch::Tensor q_norm, k_norm;  // qk_norm: [head_dim] gains shared by every head
  // Inference cache (TransformerImpl::cache_weights_for_inference; not parameters, never saved):
  // the effective q|k|v, wo, gate|up and w_down matrices of the current mode.
  torch::Tensor cached_qkv, cached_wo, cached_gu, cached_down;
};
TORCH_MODULE(Block);

// Keys and values of the tokens a model has seen, for incremental decoding with forward_cached.
struct KvCache {
  std::vector<torch::Tensor> k, v;  // per layer [1, n_kv_heads, length, head_dim] (after RoPE)
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
  void truncate(int64_t n);  // keeps the first n positions
  void clear() { k.clear(), v.clear(); }
};

class TransformerImpl : public torch::nn::Module {
 public:
  // Weights are initialized from torch's default generator (seed it first for reproducibility).
  TransformerImpl(const ModelConfig& cfg, QuantMode mode, WeightInit init = WeightInit::Random);

  // ids: [B, T] int64. key_valid: optional [B, T] bool, false for padding keys (a query always sees
  // itself, so padded rows stay finite). Returns logits [B, T, vocab] (bf16 under autocast).
  torch::Tensor forward(const torch::Tensor& ids, const torch::Tensor& key_valid = {});
  // ids: [1, n], the n tokens after the cache's; appends their keys and values to `cache` and returns
  // their logits [1, n, vocab]: rows length..length+n-1 of forward() over the whole sequence (to
  // float rounding; quantizers are per token, so every mode matches). For inference (no grad).
  torch::Tensor forward_cached(const torch::Tensor& ids, KvCache& cache);

  void set_quant_mode(QuantMode m);  // drops the inference cache
  // Inference: computes each block's effective matrices once (ternary-quantized in a BitLinear mode,
  // q|k|v and gate|up concatenated) so forward passes stop re-deriving them from the latent weights.
  // The results are unchanged. Weights must not change while it is held (training refuses it):
  // drop_inference_cache() before any update.
  void cache_weights_for_inference();
  void drop_inference_cache();
  QuantMode quant_mode() const { return mode_; }
  const ModelConfig& config() const { return cfg_; }
  torch::Tensor output_weight() const { return cfg_.tie_embeddings ? embed : lm_head; }

  // The four matmul inputs of a block, each as the matmul receives it (quantized in a BitLinear
  // mode): the engine parity check (engine_parity.h) recovers their integer codes from them.
  enum class LinearInput { Qkv, Wo, GateUp, Down };
  using LinearInputObserver = std::function<void(int64_t layer, LinearInput which, const torch::Tensor& input)>;
  // Called in forward() and forward_cached(), block by block; empty (the default): not called.
  void set_linear_input_observer(LinearInputObserver o) { input_observer_ = std::move(o); }

  torch::Tensor embed, lm_head, final_norm;
  torch::nn::ModuleList layers;

 private:
  // With k_cache/v_cache, this block's keys and values are appended to them and attention spans both.
  torch::Tensor block_forward(int64_t layer, BlockImpl& b, const torch::Tensor& x, const torch::Tensor& mask,
                              const torch::Tensor& cos, const torch::Tensor& sin, torch::Tensor* k_cache = nullptr,
                              torch::Tensor* v_cache = nullptr);
  // Additive mask [1 or B, 1, Tq, past + Tq] for Tq queries after `past` cached positions.
  torch::Tensor attention_mask(const torch::Tensor& key_valid, int64_t Tq, int64_t past, const torch::Device& dev);
  ModelConfig cfg_;
  QuantMode mode_;
  torch::Tensor rope_cos_, rope_sin_;  // [max_seq_len, head_dim / 2], float32 buffers
  LinearInputObserver input_observer_;
};
TORCH_MODULE(Transformer);

// RMSNorm over the last dimension, computed in float32.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& gain, double eps);
// Applies rotate-half RoPE to x [B, H, T, hd] with cos/sin [T, hd/2].
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);
// relu(g)^2 * u with a fused backward.
torch::Tensor relu2_gate(const torch::Tensor& g, const torch::Tensor& u);

}  // namespace bkd

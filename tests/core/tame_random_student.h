#pragma once
// A random-weight student whose forward pass is not chaotic, for comparing runtimes (llama.cpp, the
// Hugging Face reference) with the engine: attention logits O(1) (q, k latent weights small), the FFN
// gate O(1) (where relu^2 and silu differ most), branch outputs O(1) against the residual stream, and
// logits O(1) so that no probability underflows in float32.
#include <random>
#include <vector>

#include "core/engine/packed_model.h"

namespace bkd::test {

inline PackedModel tame_random_student(const ModelConfig& c, uint32_t seed, float embed_std = 0.1f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto fill = [&](int64_t n, float std, float mean = 0.0f) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = mean + std * nd(rng);
    return v;
  };
  const int64_t D = c.d_model, F = c.ffn_dim, KV = c.n_kv_heads * c.head_dim(), V = c.vocab_size;
  FloatModelWeights w;
  w.cfg = c;
  w.embed = fill(V * D, embed_std);
  if (!c.tie_embeddings) w.lm_head = fill(V * D, embed_std);
  w.final_norm = fill(D, 0.1f, 1.0f);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    FloatLayerWeights l;
    l.attn_norm = fill(D, 0.1f, 1.0f), l.attn_sub_norm = fill(D, 0.1f, 1.0f);
    l.ffn_norm = fill(D, 0.1f, 1.0f), l.ffn_sub_norm = fill(F, 0.1f, 1.0f);
    l.wq = fill(D * D, 0.05f), l.wk = fill(KV * D, 0.05f), l.wv = fill(KV * D, 0.1f), l.wo = fill(D * D, 0.1f);
    l.w_gate = fill(F * D, 0.1f), l.w_up = fill(F * D, 0.1f), l.w_down = fill(D * F, 0.1f);
    w.layers.push_back(l);
  }
  return pack_model(w, TableFormat::F32);
}

}  // namespace bkd::test

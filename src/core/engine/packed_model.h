#pragma once
// The BitNet student in engine form: packed ternary projections with their absmean scales, fp32
// norm gains, and 32/16/8-bit embedding and head tables. Names and shapes follow src/torch/model/model.h
// (linear weights are [out, in]):
//   embed [V, D], lm_head [V, D] (untied only), final_norm [D],
//   layers.i: attn_norm [D], wq [D, D], wk [KV, D], wv [KV, D], attn_sub_norm [D], wo [D, D],
//             ffn_norm [D], w_gate [F, D], w_up [F, D], ffn_sub_norm [F], w_down [D, F]
#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "core/engine/embedding_table.h"
#include "core/engine/ternary_format.h"
#include "core/model/model_config.h"

namespace bkd {

struct PackedLayer {
  std::vector<float> attn_norm, attn_sub_norm, ffn_norm, ffn_sub_norm;
  TernaryMatrix wq, wk, wv, wo, w_gate, w_up, w_down;

  // The seven projections, in the order above.
  std::array<TernaryMatrix*, 7> projections() { return {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down}; }
  std::array<const TernaryMatrix*, 7> projections() const { return {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down}; }
};

struct PackedModel {
  ModelConfig cfg;
  EmbeddingTable embed;
  EmbeddingTable lm_head;  // unused when cfg.tie_embeddings: the head reads embed
  std::vector<float> final_norm;
  std::vector<PackedLayer> layers;
  // The activation mode the student was trained in (export records it; the engine's default when
  // serving). nullopt: not recorded (older files, random dry-run models).
  std::optional<QuantMode> trained_mode;

  const EmbeddingTable& head() const { return cfg.tie_embeddings ? embed : lm_head; }
  uint64_t ternary_bytes() const;  // packed projections
  uint64_t table_bytes() const;    // embedding + head (once when tied)
  // Throws Error naming the tensor whose shape disagrees with cfg.
  void validate() const;
  // Groups the rows of every projection whose row count allows it into the kernels' tiles
  // (kEngineTileRows, ternary_format.h); the loaders and packers call it, writers accept either layout.
  void use_engine_layout();
};

// Full-precision weights in memory (the trainer's latent weights, or a test's), same names/shapes.
struct FloatLayerWeights {
  std::vector<float> attn_norm, wq, wk, wv, attn_sub_norm, wo, ffn_norm, w_gate, w_up, ffn_sub_norm, w_down;
};
struct FloatModelWeights {
  ModelConfig cfg;
  std::vector<float> embed, lm_head, final_norm;
  std::vector<FloatLayerWeights> layers;
};

// Quantizes every projection with the absmean ternary quantizer and converts the tables to
// `tables` (F32 keeps them exact). Throws Error on a shape that disagrees with the config.
PackedModel pack_model(const FloatModelWeights& w, TableFormat tables = TableFormat::F32);

}  // namespace bkd

#include "core/engine/packed_model.h"

#include <string>

#include "core/util/error.h"

namespace bkd {
namespace {

void need_size(const std::vector<float>& v, int64_t n, const std::string& name) {
  if (static_cast<int64_t>(v.size()) != n)
    throw Error("weight " + name + " has " + std::to_string(v.size()) + " values, expected " + std::to_string(n),
                "the weights do not match the model config (check d_model, n_kv_heads, ffn_dim, vocab_size)");
}

void need_shape(const TernaryMatrix& m, int64_t rows, int64_t cols, const std::string& name) {
  if (m.rows != rows || m.cols != cols)
    throw Error("packed " + name + " is " + std::to_string(m.rows) + "x" + std::to_string(m.cols) + ", expected " +
                std::to_string(rows) + "x" + std::to_string(cols));
}

}  // namespace

uint64_t PackedModel::ternary_bytes() const {
  uint64_t b = 0;
  for (const auto& l : layers)
    for (const TernaryMatrix* m : l.projections()) b += m->bytes();
  return b;
}

void PackedModel::use_engine_layout() {
  for (auto& l : layers)
    for (TernaryMatrix* m : l.projections())
      m->retile(m->rows % kEngineTileRows == 0 ? kEngineTileRows : 1);
}

uint64_t PackedModel::table_bytes() const { return embed.bytes() + (cfg.tie_embeddings ? 0 : lm_head.bytes()); }

void PackedModel::validate() const {
  cfg.validate();
  if (cfg.has_hf_features())
    throw UsageError("the packed engine runs the BitNet layout (SubLN, no biases, no q/k norm, head_dim = d_model / heads, "
                     "no RoPE scaling), and this student keeps its Hugging Face teacher's switches (STUDENT_INIT=teacher)",
                     "engine support for those switches is not written yet: start the student from a teacher without them "
                     "(Mistral, Llama without RoPE scaling) or from scratch (STUDENT_INIT=scratch)");
  const int64_t D = cfg.d_model, F = cfg.ffn_dim, KV = cfg.n_kv_heads * cfg.head_dim(), V = cfg.vocab_size;
  if (embed.rows != V || embed.cols != D) throw Error("embedding table shape disagrees with the config");
  if (!cfg.tie_embeddings && (lm_head.rows != V || lm_head.cols != D))
    throw Error("lm_head table shape disagrees with the config", "or set tie_embeddings");
  need_size(final_norm, D, "final_norm");
  if (static_cast<int64_t>(layers.size()) != cfg.n_layers)
    throw Error("model has " + std::to_string(layers.size()) + " layers, config says " + std::to_string(cfg.n_layers));
  for (size_t i = 0; i < layers.size(); ++i) {
    const PackedLayer& l = layers[i];
    const std::string p = "layers." + std::to_string(i) + ".";
    need_size(l.attn_norm, D, p + "attn_norm");
    need_size(l.attn_sub_norm, D, p + "attn_sub_norm");
    need_size(l.ffn_norm, D, p + "ffn_norm");
    need_size(l.ffn_sub_norm, F, p + "ffn_sub_norm");
    need_shape(l.wq, D, D, p + "wq");
    need_shape(l.wk, KV, D, p + "wk");
    need_shape(l.wv, KV, D, p + "wv");
    need_shape(l.wo, D, D, p + "wo");
    need_shape(l.w_gate, F, D, p + "w_gate");
    need_shape(l.w_up, F, D, p + "w_up");
    need_shape(l.w_down, D, F, p + "w_down");
  }
}

PackedModel pack_model(const FloatModelWeights& w, TableFormat tables) {
  const ModelConfig& c = w.cfg;
  c.validate();
  const int64_t D = c.d_model, F = c.ffn_dim, KV = c.n_kv_heads * c.head_dim(), V = c.vocab_size;
  PackedModel m;
  m.cfg = c;
  need_size(w.embed, V * D, "embed");
  m.embed = make_table(tables, w.embed.data(), V, D);
  if (!c.tie_embeddings) {
    need_size(w.lm_head, V * D, "lm_head");
    m.lm_head = make_table(tables, w.lm_head.data(), V, D);
  }
  need_size(w.final_norm, D, "final_norm");
  m.final_norm = w.final_norm;
  if (static_cast<int64_t>(w.layers.size()) != c.n_layers)
    throw Error("weights have " + std::to_string(w.layers.size()) + " layers, config says " + std::to_string(c.n_layers));
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const FloatLayerWeights& f = w.layers[i];
    const std::string p = "layers." + std::to_string(i) + ".";
    auto tern = [&](const std::vector<float>& v, int64_t rows, int64_t cols, const char* name) {
      need_size(v, rows * cols, p + name);
      return quantize_ternary_absmean(v.data(), rows, cols);
    };
    PackedLayer l;
    need_size(f.attn_norm, D, p + "attn_norm");
    need_size(f.attn_sub_norm, D, p + "attn_sub_norm");
    need_size(f.ffn_norm, D, p + "ffn_norm");
    need_size(f.ffn_sub_norm, F, p + "ffn_sub_norm");
    l.attn_norm = f.attn_norm;
    l.attn_sub_norm = f.attn_sub_norm;
    l.ffn_norm = f.ffn_norm;
    l.ffn_sub_norm = f.ffn_sub_norm;
    l.wq = tern(f.wq, D, D, "wq");
    l.wk = tern(f.wk, KV, D, "wk");
    l.wv = tern(f.wv, KV, D, "wv");
    l.wo = tern(f.wo, D, D, "wo");
    l.w_gate = tern(f.w_gate, F, D, "w_gate");
    l.w_up = tern(f.w_up, F, D, "w_up");
    l.w_down = tern(f.w_down, D, F, "w_down");
    m.layers.push_back(std::move(l));
  }
  m.use_engine_layout();
  return m;
}

}  // namespace bkd

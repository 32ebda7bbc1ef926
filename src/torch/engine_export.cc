#include "torch/engine_export.h"

#include <cmath>

#include "core/engine/engine.h"
#include "core/engine/sampler.h"

namespace bkd {
namespace {
std::vector<float> to_vec(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}
}  // namespace

FloatModelWeights float_weights_of(Transformer& m) {
  FloatModelWeights w;
  w.cfg = m->config();
  w.embed = to_vec(m->embed);
  if (!w.cfg.tie_embeddings) w.lm_head = to_vec(m->lm_head);
  w.final_norm = to_vec(m->final_norm);
  for (const auto& mod : *m->layers) {
    const BlockImpl& b = *mod->as<BlockImpl>();
    w.layers.push_back({to_vec(b.attn_norm), to_vec(b.wq), to_vec(b.wk), to_vec(b.wv), to_vec(b.attn_sub_norm),
                        to_vec(b.wo), to_vec(b.ffn_norm), to_vec(b.w_gate), to_vec(b.w_up), to_vec(b.ffn_sub_norm),
                        to_vec(b.w_down)});
  }
  return w;
}

ParityResult engine_parity(Transformer& model, const PackedModel& packed, const std::vector<int32_t>& tokens, int threads) {
  torch::NoGradGuard no_grad;
  const int64_t T = static_cast<int64_t>(tokens.size()), V = packed.cfg.vocab_size;
  torch::Tensor ids = torch::empty({1, T}, torch::kLong);
  for (int64_t t = 0; t < T; ++t) ids[0][t] = tokens[t];
  const bool was_training = model->is_training();
  model->eval();
  torch::Tensor ref = model->forward(ids).to(torch::kFloat).contiguous();
  model->train(was_training);
  EngineOptions o;
  o.mode = model->quant_mode();
  o.threads = threads;
  Engine e(packed, o);
  std::vector<float> logits(static_cast<size_t>(T * V));
  e.forward(tokens.data(), T, logits.data(), true);
  const float* r = ref.data_ptr<float>();
  ParityResult p;
  p.positions = T;
  for (int64_t i = 0; i < T * V; ++i) {
    p.max_abs_diff = std::max(p.max_abs_diff, std::fabs(static_cast<double>(logits[i]) - r[i]));
    p.max_abs_logit = std::max(p.max_abs_logit, std::fabs(static_cast<double>(r[i])));
  }
  for (int64_t t = 0; t < T; ++t) p.argmax_agree += argmax(logits.data() + t * V, V) == argmax(r + t * V, V);
  return p;
}

}  // namespace bkd

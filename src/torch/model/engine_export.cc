#include "torch/model/engine_export.h"

#include <cmath>
#include <limits>

#include "core/engine/engine.h"
#include "core/engine/sampler.h"
#include "core/util/error.h"
#include "torch/model/checkpoint.h"

namespace bkd {
namespace {
std::vector<float> to_vec(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kFloat).contiguous();
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

// Keeps the engine's final hidden states (the head's input) of the last forward pass.
struct FinalHidden : ForwardObserver {
  std::vector<float> h;
  void on_final_hidden(const float* x, int64_t rows, int64_t d) override { h.assign(x, x + rows * d); }
};

// One window: engine vs torch logits, accumulated into p.
void compare_window(Transformer& model, Engine& e, const PackedModel& packed, const std::vector<int32_t>& tokens,
                    ParityResult& p) {
  const int64_t T = static_cast<int64_t>(tokens.size()), V = packed.cfg.vocab_size, D = packed.cfg.d_model;
  if (T == 0) return;
  const int64_t within_before = p.within_tolerance;
  torch::Tensor ids = torch::empty({1, T}, torch::kLong);
  for (int64_t t = 0; t < T; ++t) ids[0][t] = tokens[t];
  torch::Tensor ref = model->forward(ids).to(torch::kFloat).contiguous();
  FinalHidden fh;
  e.set_observer(&fh);
  e.reset();
  std::vector<float> logits(static_cast<size_t>(T * V));
  e.forward(tokens.data(), T, logits.data(), true);
  e.set_observer(nullptr);
  const float* r = ref.data_ptr<float>();
  const double u = std::ldexp(1.0, -24);
  const double gamma = static_cast<double>(D) * u / (1.0 - static_cast<double>(D) * u);
  const EmbeddingTable& head = packed.head();
  std::vector<float> row(static_cast<size_t>(D));
  std::vector<double> mag(static_cast<size_t>(T), 0.0);
  for (int64_t v = 0; v < V; ++v) {
    head.lookup(v, row.data());
    for (int64_t t = 0; t < T; ++t) {
      const float* h = fh.h.data() + t * D;
      double s = 0;
      for (int64_t k = 0; k < D; ++k) s += std::fabs(static_cast<double>(h[k]) * row[k]);
      mag[t] = std::max(mag[t], s);
    }
  }
  for (int64_t t = 0; t < T; ++t) {
    const float* lr = r + t * V;
    const float* le = logits.data() + t * V;
    double diff = 0;
    for (int64_t v = 0; v < V; ++v) {
      diff = std::max(diff, std::fabs(static_cast<double>(le[v]) - lr[v]));
      p.max_abs_logit = std::max(p.max_abs_logit, std::fabs(static_cast<double>(lr[v])));
    }
    p.max_abs_diff = std::max(p.max_abs_diff, diff);
    const int32_t a = argmax(le, V), b = argmax(lr, V);
    const double tol = (2.0 * gamma + 64.0 * u * static_cast<double>(packed.cfg.n_layers)) * mag[t];
    p.max_tolerance = std::max(p.max_tolerance, tol);
    p.worst_diff_over_tolerance = std::max(p.worst_diff_over_tolerance, tol > 0 ? diff / tol : (diff > 0 ? INFINITY : 0));
    p.within_tolerance += diff <= tol;
    if (a == b) {
      ++p.argmax_agree;
    } else {
      double second = -std::numeric_limits<double>::infinity();
      for (int64_t v = 0; v < V; ++v)
        if (v != b) second = std::max(second, static_cast<double>(lr[v]));
      (static_cast<double>(lr[b]) - second <= 2.0 * tol ? p.near_tie_disagree : p.clear_disagree)++;
    }
  }
  p.positions += T;
  ++p.windows;
  p.windows_within += p.within_tolerance - within_before == T;
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

StudentCheckpoint load_student_checkpoint(const std::string& dir) {
  const nlohmann::json st = load_checkpoint_state(dir);
  StudentCheckpoint c;
  c.dir = dir;
  const ModelConfig cfg = st.at("model_config").get<ModelConfig>();
  c.mode = quant_mode_from_string(st.at("quant_mode").get<std::string>());
  c.step = st.value("step", int64_t(0));
  if (!cfg.bitlinear || c.mode == QuantMode::FullPrecision)
    throw Error("checkpoint " + dir + " is a full-precision model", "export packs BitNet (ternary) students only");
  c.model = Transformer(cfg, c.mode);
  load_model_weights(dir, c.model, false);
  c.model->eval();
  return c;
}

PackedModel pack_student(StudentCheckpoint& ckpt, TableFormat tables) {
  PackedModel p = pack_model(float_weights_of(ckpt.model), tables);
  p.trained_mode = ckpt.mode;
  return p;
}

ParityResult engine_parity_windows(Transformer& model, const PackedModel& packed,
                                   const std::vector<std::vector<int32_t>>& windows, int threads,
                                   const KernelSet* kernels) {
  torch::NoGradGuard no_grad;
  const bool was_training = model->is_training();
  model->eval();
  EngineOptions o;
  o.mode = model->quant_mode();
  o.threads = threads;
  o.kernels = kernels;
  Engine e(packed, o);
  ParityResult p;
  for (const auto& w : windows) {
    if (static_cast<int64_t>(w.size()) > e.max_seq_len())
      throw Error("parity window of " + std::to_string(w.size()) + " tokens exceeds the model's context of " +
                  std::to_string(e.max_seq_len()));
    compare_window(model, e, packed, w, p);
  }
  model->train(was_training);
  return p;
}

}  // namespace bkd

#include "torch/model/engine_parity.h"

#include <array>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/engine/engine.h"
#include "core/engine/sampler.h"
#include "core/engine/ternary_format.h"
#include "core/util/error.h"
#include "torch/model/quant.h"

namespace bkd {
namespace {

// Unit roundoff of fp32 and the forward-error factor of n fp32 operations in sequence
// (Higham, Accuracy and Stability of Numerical Algorithms, 2nd ed., Lemma 3.1).
constexpr double kU = 0x1p-24;
double gamma(double n) { return n * kU / (1.0 - n * kU); }

constexpr int kInputs = 4;  // TransformerImpl::LinearInput: Qkv, Wo, GateUp, Down
using LinearInput = TransformerImpl::LinearInput;

// The engine's quantized input of one BitLinear over a window: rows x cols codes and each row's step.
struct EngineInput {
  int64_t rows = 0, cols = 0;
  ActBits bits = ActBits::A8;
  std::vector<int8_t> codes;
  std::vector<float> step;  // QuantizedActs::mult: the value of one code
  float w_scale = 0;        // the projection's ternary scale (wo, w_down: the only one of its input)
};

// Records what the engine computed in one forward pass: every BitLinear input (q|k|v and gate|up
// share theirs: recorded once), the residual stream after each add and the final hidden states.
struct EngineSide : ForwardObserver {
  std::vector<std::array<EngineInput, kInputs>> inputs;   // [layer][LinearInput]
  std::vector<std::array<std::vector<float>, 2>> residual;  // [layer][after wo, after w_down]
  std::vector<float> final_hidden;

  explicit EngineSide(int64_t layers) : inputs(static_cast<size_t>(layers)), residual(static_cast<size_t>(layers)) {}
  void on_bitlinear(int64_t layer, const char* name, const QuantizedActs& x, const TernaryMatrix& w, const int32_t*,
                    int64_t) override {
    const std::string n = name;
    const int which = n == "wq" ? 0 : n == "wo" ? 1 : n == "w_gate" ? 2 : n == "w_down" ? 3 : -1;
    if (which < 0) return;
    EngineInput& in = inputs[static_cast<size_t>(layer)][static_cast<size_t>(which)];
    in.rows = x.rows, in.cols = x.cols, in.bits = x.bits, in.w_scale = w.scale;
    in.codes.resize(static_cast<size_t>(x.rows * x.cols));
    for (int64_t m = 0; m < x.rows; ++m) std::memcpy(in.codes.data() + m * x.cols, x.row(m), static_cast<size_t>(x.cols));
    in.step.assign(x.mult.begin(), x.mult.begin() + x.rows);
  }
  void on_residual(int64_t layer, const char* after, const float* x, int64_t rows, int64_t d) override {
    residual[static_cast<size_t>(layer)][std::strcmp(after, "wo") == 0 ? 0 : 1].assign(x, x + rows * d);
  }
  void on_final_hidden(const float* h, int64_t rows, int64_t d) override { final_hidden.assign(h, h + rows * d); }
};

// One row of a BitLinear input, LibTorch's values y against the engine's codes c and step.
struct RowComparison {
  bool on_grid = true;     // y is a whole number of one step each (the codes below are LibTorch's)
  double step = 0;         // LibTorch's step as recovered from y (0 for a row of zeros)
  double l1_engine = 0, l1_torch = 0, l1_diff = 0;  // sum |c|, sum |c'|, sum |c' - c|
  int64_t differ = 0, max_step = 0;
};

// LibTorch's matmul received y_k = fl(c'_k * mu) (quant_rows.h: A8 fl(code / s), A4 fl(code * deq)).
// Given a candidate step, the codes are round(y_k / step), mu_hat = y_k* / c'_k* at the largest code,
// and every y_k must then equal c'_k * mu_hat to rounding: y_k - c'_k mu_hat = c'_k mu (theta_k -
// theta_k*), so |y_k - c'_k mu_hat| <= 2u / (1 - u) |c'_k mu_hat| (the ratio is exact to 2^-53).
bool codes_on_step(const float* y, int64_t k_count, double step, int64_t lo, int64_t hi, std::vector<int64_t>* ct,
                   double* mu_hat) {
  int64_t k_max = -1;
  for (int64_t k = 0; k < k_count; ++k) {
    const double q = step > 0 ? std::nearbyint(static_cast<double>(y[k]) / step) : 0.0;
    if (!(q >= static_cast<double>(lo) && q <= static_cast<double>(hi))) return false;
    (*ct)[k] = static_cast<int64_t>(q);
    if (k_max < 0 || std::llabs((*ct)[k]) > std::llabs((*ct)[k_max])) k_max = k;
  }
  *mu_hat = (*ct)[k_max] != 0 ? static_cast<double>(y[k_max]) / static_cast<double>((*ct)[k_max]) : 0.0;
  const double slack = 2.0 * kU / (1.0 - kU) * (1.0 + 0x1p-40);
  for (int64_t k = 0; k < k_count; ++k) {
    const double expect = static_cast<double>((*ct)[k]) * *mu_hat;
    if (std::fabs(static_cast<double>(y[k]) - expect) > slack * std::fabs(expect)) return false;
  }
  return true;
}

// LibTorch's codes of one row, tried first with the engine's step (exact while the two steps agree,
// as they do unless a flip upstream changed the row), then with the row's own: A8's largest code is
// always +-127 (x_max * s rounds to 127), so mu = max|y| / 127; an A4 step is the largest
// min-nonzero|y| / j (j = 1..8) on which every value is a whole code (a row of 64 or more values
// with no code +-1 and every code even is not met in practice: it would read as twice the step).
bool torch_codes(const float* y, int64_t k_count, ActBits bits, double engine_step, std::vector<int64_t>* ct,
                 double* mu_hat) {
  const int64_t lo = bits == ActBits::A8 ? -128 : -8, hi = bits == ActBits::A8 ? 127 : 7;
  if (codes_on_step(y, k_count, engine_step, lo, hi, ct, mu_hat)) return true;
  double y_max = 0, y_min = INFINITY;
  for (int64_t k = 0; k < k_count; ++k) {
    const double a = std::fabs(static_cast<double>(y[k]));
    y_max = std::max(y_max, a);
    if (a > 0) y_min = std::min(y_min, a);
  }
  if (y_max == 0) return codes_on_step(y, k_count, 0.0, lo, hi, ct, mu_hat);
  if (bits == ActBits::A8) return codes_on_step(y, k_count, y_max / 127.0, lo, hi, ct, mu_hat);
  for (int j = 1; j <= 8; ++j)
    if (codes_on_step(y, k_count, y_min / j, lo, hi, ct, mu_hat)) return true;
  return false;
}

RowComparison compare_row(const int8_t* c, ActBits bits, float engine_step, const float* y, int64_t k_count) {
  RowComparison r;
  std::vector<int64_t> ct(static_cast<size_t>(k_count));
  if (!torch_codes(y, k_count, bits, engine_step, &ct, &r.step)) return r.on_grid = false, r;
  for (int64_t k = 0; k < k_count; ++k) {
    const int64_t d = std::llabs(ct[k] - c[k]);
    r.l1_engine += std::abs(c[k]), r.l1_torch += static_cast<double>(std::llabs(ct[k])), r.l1_diff += static_cast<double>(d);
    r.differ += d != 0;
    r.max_step = std::max(r.max_step, d);
  }
  return r;
}

// Bound on |LibTorch output - engine output| of every output of a wo or w_down row (K inputs):
//   engine:  o_e = fl(float(acc) * fl(g_e * mu_e)), acc = sum c_k w_jk exact (|acc| < 2^24):
//            |o_e - acc g_e mu_e| <= gamma_2 g_e mu_e |c|_1
//   LibTorch: o_t = fp32 dot of y_k = c'_k mu_t (1 + theta_k) and w_jk g_t, any order:
//            |o_t - acc' g_t mu_t| <= gamma_{K+1} g_t mu_t |c'|_1
//   and acc' g_t mu_t - acc g_e mu_e = g_t mu_t (acc' - acc) + (g_t mu_t - g_e mu_e) acc, with
//   |acc' - acc| <= |c' - c|_1 and |acc| <= |c|_1 (|w_jk| <= 1), mu_t <= mu_hat / (1 - u).
double output_bound(const RowComparison& r, double engine_step, double g_engine, double g_torch, int64_t k_count) {
  const double me = engine_step * g_engine, mt = r.step * g_torch / (1.0 - kU);
  return mt * r.l1_diff + (std::fabs(r.step * g_torch - me) + kU * mt) * r.l1_engine +
         gamma(static_cast<double>(k_count + 1)) * mt * r.l1_torch + gamma(2) * me * r.l1_engine;
}

// The weights both sides multiply by: the engine's packed codes and scale against the checkpoint's
// quantized weights (ternary_weight_fused, what LibTorch's forward uses). Returns the mismatches.
int64_t compare_weights(Transformer& model, const PackedModel& packed, std::vector<std::array<double, 7>>* torch_scales) {
  int64_t mismatches = 0;
  torch_scales->assign(packed.layers.size(), {});
  for (size_t l = 0; l < packed.layers.size(); ++l) {
    const BlockImpl& b = *model->layers[l]->as<BlockImpl>();
    const std::array<const torch::Tensor*, 7> latent = {&b.wq, &b.wk, &b.wv, &b.wo, &b.w_gate, &b.w_up, &b.w_down};
    const auto projs = packed.layers[l].projections();
    for (size_t j = 0; j < 7; ++j) {
      const torch::Tensor q = ternary_weight_fused(latent[j]->detach().to(torch::kFloat).contiguous());
      const double g = static_cast<float>(ternary_scale(*latent[j]));
      (*torch_scales)[l][j] = g;
      const TernaryMatrix& w = *projs[j];
      bool same = w.rows == q.size(0) && w.cols == q.size(1) && std::fabs(w.scale - g) <= kU * g;
      std::vector<int8_t> codes(static_cast<size_t>(w.cols));
      const float* qv = q.data_ptr<float>();
      for (int64_t n = 0; same && n < w.rows; ++n) {
        same = unpack_ternary_row(w, n, codes.data());
        for (int64_t k = 0; same && k < w.cols; ++k) {
          const float v = qv[n * w.cols + k];
          same = codes[k] == (v > 0 ? 1 : v < 0 ? -1 : 0);
        }
      }
      mismatches += !same;
    }
  }
  return mismatches;
}

struct Window {
  const std::vector<int32_t>& tokens;
  const std::vector<std::array<double, 7>>& torch_scales;
  const torch::Tensor& abs_head;  // |E| of the head table, [V, D] float
};

torch::Tensor abs_head_table(const EmbeddingTable& t) {
  torch::Tensor e = torch::empty({t.rows, t.cols}, torch::kFloat);
  float* p = e.data_ptr<float>();
  for (int64_t v = 0; v < t.rows; ++v) t.lookup(v, p + v * t.cols);
  return e.abs_();
}

// One window through both sides, accumulated into p.
void compare_window(Transformer& model, Engine& e, const PackedModel& packed, const Window& w, ParityResult& p) {
  const ModelConfig& cfg = packed.cfg;
  const int64_t T = static_cast<int64_t>(w.tokens.size()), V = cfg.vocab_size, D = cfg.d_model, L = cfg.n_layers;
  if (T == 0) return;
  std::vector<std::array<torch::Tensor, kInputs>> torch_inputs(static_cast<size_t>(L));
  model->set_linear_input_observer([&](int64_t layer, LinearInput which, const torch::Tensor& x) {
    torch_inputs[static_cast<size_t>(layer)][static_cast<size_t>(which)] = x.detach().to(torch::kFloat).contiguous().clone();
  });
  torch::Tensor ids = torch::empty({1, T}, torch::kLong);
  for (int64_t t = 0; t < T; ++t) ids[0][t] = w.tokens[t];
  torch::Tensor ref;
  try {
    ref = model->forward(ids).to(torch::kFloat).contiguous();
  } catch (...) {
    model->set_linear_input_observer(nullptr);
    throw;
  }
  model->set_linear_input_observer(nullptr);
  EngineSide es(L);
  e.set_observer(&es);
  e.reset();
  std::vector<float> logits(static_cast<size_t>(T * V));
  e.forward(w.tokens.data(), T, logits.data(), true);
  e.set_observer(nullptr);
  const float* lr = ref.data_ptr<float>();

  // Codes of every input; the bound on the residual stream's difference, B[t][k], from the wo and
  // w_down outputs' bounds and each add's rounding: x_a = fl(x_b + o) on both sides, so
  // |dx_a| <= |dx_b| + |do| + u |x_a,engine| + u (|x_a,engine| + |dx_a|).
  std::vector<double> B(static_cast<size_t>(T * D), 0.0);
  int64_t first_flip = T;  // the window's first position with a differing code
  // Positions the bound cannot cover (an off-grid row, or a residual difference too large for the
  // norm's estimate): they count as outside it.
  std::vector<bool> unbounded(static_cast<size_t>(T), false);
  // The projection groups run in order (q|k|v, wo, gate|up, w_down, layer by layer). A code at row t
  // depends on the earlier groups' codes at rows <= t (attention reaches back; other steps stay in
  // the row), so a differing code is a flip unless an earlier group differs at or before its row.
  int64_t upstream_first = T;  // the earliest row with a differing code in any earlier group
  for (int64_t l = 0; l < L; ++l) {
    for (int i = 0; i < kInputs; ++i) {
      const EngineInput& ei = es.inputs[static_cast<size_t>(l)][static_cast<size_t>(i)];
      const torch::Tensor& ti = torch_inputs[static_cast<size_t>(l)][static_cast<size_t>(i)];
      if (!ti.defined() || ei.rows != T || ti.numel() != T * ei.cols)
        throw Error("internal: parity saw no input of layer " + std::to_string(l) + " projection group " + std::to_string(i));
      const int64_t K = ei.cols;
      const bool to_residual = i == 1 || i == 3;  // wo, w_down
      const double g_engine = ei.w_scale, g_torch = w.torch_scales[static_cast<size_t>(l)][i == 1 ? 3 : 6];
      const std::vector<float>& xa = es.residual[static_cast<size_t>(l)][i == 1 ? 0 : 1];
      int64_t group_first = T;
      for (int64_t t = 0; t < T; ++t) {
        const RowComparison r = compare_row(ei.codes.data() + t * K, ei.bits, ei.step[t], ti.data_ptr<float>() + t * K, K);
        p.codes_compared += K;
        if (!r.on_grid) {
          ++p.rows_off_grid;
          unbounded[t] = true;
          continue;
        }
        p.codes_differ += r.differ;
        if (r.differ) {
          group_first = std::min(group_first, t);
          if (t < upstream_first) {
            p.boundary_flips += r.differ;
            p.max_flip_step = std::max(p.max_flip_step, r.max_step);
          }
        }
        if (!to_residual) continue;
        const double b = output_bound(r, ei.step[t], g_engine, g_torch, K);
        for (int64_t k = 0; k < D; ++k) {
          double& bk = B[t * D + k];
          bk = (bk + b + 2.0 * kU * std::fabs(static_cast<double>(xa[t * D + k]))) / (1.0 - kU);
        }
      }
      upstream_first = std::min(upstream_first, group_first);
      first_flip = std::min(first_flip, group_first);
    }
  }
  p.positions_after_code_flip += T - first_flip;

  // Final RMSNorm, h = x r g with r = 1 / sqrt(mean x^2 + eps), each side from its own x. With the
  // engine's x and |dx_k| <= B_k: |mean x_t^2 - mean x_e^2| <= mean(2 |x_k| B_k + B_k^2) =: delta
  // (ms_e + eps), and for delta <= 1/2 the two r differ by a factor within [1 - delta, 1 + delta].
  // Each side rounds r (double sum, float cast, add, sqrt, divide) and two products: gamma_8 covers
  // both and the double-precision sum. So |dh_k| <= |g_k| r (B_k (1 + delta)(1 + gamma_8) +
  // |x_k| (delta (1 + gamma_8) + 2 gamma_8)) =: H_k.
  const std::vector<float>& xl = es.residual.back()[1];
  const double g8 = gamma(8), eps = cfg.norm_eps;
  std::vector<double> H(static_cast<size_t>(T * D), std::numeric_limits<double>::infinity());
  for (int64_t t = 0; t < T; ++t) {
    if (unbounded[t]) continue;
    double ms = 0, dms = 0;
    for (int64_t k = 0; k < D; ++k) {
      const double x = xl[t * D + k], bk = B[t * D + k];
      ms += x * x, dms += 2.0 * std::fabs(x) * bk + bk * bk;
    }
    ms /= static_cast<double>(D), dms /= static_cast<double>(D);
    const double delta = dms / (ms + eps);
    if (delta > 0.5) {
      unbounded[t] = true;
      continue;
    }
    const double r = 1.0 / std::sqrt(ms + eps);
    for (int64_t k = 0; k < D; ++k)
      H[t * D + k] = std::fabs(static_cast<double>(packed.final_norm[k])) * r *
                     (B[t * D + k] * (1.0 + delta) * (1.0 + g8) + std::fabs(static_cast<double>(xl[t * D + k])) * (delta * (1.0 + g8) + 2.0 * g8));
  }

  // Head: both sides are fp32 dot products of length D with the same table row E_v, so
  // |dl_v| <= sum |E_vk| H_k + gamma_D (sum |h_e E_v| + sum |h_t E_v|)
  //        <= (1 + gamma_D) sum |E_vk| H_k + 2 gamma_D sum |h_e,k E_vk|.
  // The two sums over k, for every (t, v), are one fp32 matmul of [H; |h_e|] with |E|^T. Every term
  // is >= 0, so the product is at least (1 - gamma_{D+1}) times the exact sum, and H rounded to
  // float is at least (1 - u) times H: dividing by both leaves an upper bound.
  const double gD = gamma(static_cast<double>(D));
  torch::Tensor lhs = torch::empty({2 * T, D}, torch::kFloat);
  float* lp = lhs.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t k = 0; k < D; ++k) {
      const double hk = H[t * D + k];
      if (!std::isfinite(hk) || hk > 1e30) unbounded[t] = true;
      lp[t * D + k] = unbounded[t] ? 0.0f : static_cast<float>(hk);
      lp[(T + t) * D + k] = std::fabs(es.final_hidden[t * D + k]);
    }
  const torch::Tensor sums = torch::matmul(lhs, w.abs_head.t()).contiguous();  // [2T, V]
  const float* sp = sums.data_ptr<float>();
  const double inflate_h = 1.0 / ((1.0 - kU) * (1.0 - gamma(static_cast<double>(D + 1))));
  const double inflate_e = 1.0 / (1.0 - gamma(static_cast<double>(D + 1)));
  std::vector<double> bound(static_cast<size_t>(T * V));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t v = 0; v < V; ++v)
      bound[t * V + v] = unbounded[t] ? INFINITY : (1.0 + gD) * inflate_h * sp[t * V + v] + 2.0 * gD * inflate_e * sp[(T + t) * V + v];

  for (int64_t t = 0; t < T; ++t) {
    const float* r = lr + t * V;
    const float* le = logits.data() + t * V;
    const double* bt = bound.data() + t * V;
    bool within = !unbounded[t];
    if (unbounded[t]) p.worst_diff_over_bound = INFINITY;
    for (int64_t v = 0; v < V; ++v) {
      const double diff = std::fabs(static_cast<double>(le[v]) - r[v]);
      p.max_abs_diff = std::max(p.max_abs_diff, diff);
      p.max_abs_logit = std::max(p.max_abs_logit, std::fabs(static_cast<double>(r[v])));
      p.max_bound = std::max(p.max_bound, std::isfinite(bt[v]) ? bt[v] : 0.0);
      within &= diff <= bt[v];
      p.worst_diff_over_bound = std::max(p.worst_diff_over_bound, bt[v] > 0 ? diff / bt[v] : (diff > 0 ? INFINITY : 0.0));
    }
    p.positions_within += within;
    const int32_t a = argmax(le, V), b = argmax(r, V);
    if (a == b) {
      ++p.argmax_agree;
    } else {
      // le[a] >= le[b] and r[b] >= r[a], so r[b] - r[a] <= bound_b + bound_a while both are within.
      (static_cast<double>(r[b]) - r[a] <= bt[a] + bt[b] ? p.near_tie_disagree : p.clear_disagree)++;
    }
  }
  p.positions += T;
  ++p.windows;
}

// Without F32 tables the two sides' embeddings differ by the table's rounding: plain differences only.
void compare_window_unbounded(Transformer& model, Engine& e, const std::vector<int32_t>& tokens, int64_t V, ParityResult& p) {
  const int64_t T = static_cast<int64_t>(tokens.size());
  if (T == 0) return;
  torch::Tensor ids = torch::empty({1, T}, torch::kLong);
  for (int64_t t = 0; t < T; ++t) ids[0][t] = tokens[t];
  torch::Tensor ref = model->forward(ids).to(torch::kFloat).contiguous();
  e.reset();
  std::vector<float> logits(static_cast<size_t>(T * V));
  e.forward(tokens.data(), T, logits.data(), true);
  const float* lr = ref.data_ptr<float>();
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t v = 0; v < V; ++v) {
      p.max_abs_diff = std::max(p.max_abs_diff, std::fabs(static_cast<double>(logits[t * V + v]) - lr[t * V + v]));
      p.max_abs_logit = std::max(p.max_abs_logit, std::fabs(static_cast<double>(lr[t * V + v])));
    }
    p.argmax_agree += argmax(logits.data() + t * V, V) == argmax(lr + t * V, V);
  }
  p.positions += T;
  ++p.windows;
}
}  // namespace

bool ParityResult::codes_and_logits_agree(double max_flip_fraction) const {
  return bounded && weight_mismatches == 0 && rows_off_grid == 0 && max_flip_step <= 1 &&
         static_cast<double>(boundary_flips) <= max_flip_fraction * static_cast<double>(codes_compared) &&
         positions_within == positions;
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
  p.bounded = packed.embed.format == TableFormat::F32 && packed.head().format == TableFormat::F32;
  std::vector<std::array<double, 7>> torch_scales;
  torch::Tensor abs_head;
  if (p.bounded) {
    p.weight_mismatches = compare_weights(model, packed, &torch_scales);
    abs_head = abs_head_table(packed.head());
  }
  for (const auto& w : windows) {
    if (static_cast<int64_t>(w.size()) > e.max_seq_len())
      throw Error("parity window of " + std::to_string(w.size()) + " tokens exceeds the model's context of " +
                  std::to_string(e.max_seq_len()));
    if (p.bounded) compare_window(model, e, packed, Window{w, torch_scales, abs_head}, p);
    else compare_window_unbounded(model, e, w, packed.cfg.vocab_size, p);
  }
  model->train(was_training);
  return p;
}

}  // namespace bkd

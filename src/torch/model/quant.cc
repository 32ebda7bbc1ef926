#include "torch/model/quant.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>

#include "torch/kernels/quant_rows.h"

namespace bkd {
namespace {

std::atomic<bool> g_profiling{false};
std::atomic<int64_t> g_profile_ns{0};

// Adds the scope's wall time to the profile when profiling is on.
struct ProfileScope {
  bool on = g_profiling.load(std::memory_order_relaxed);
  std::chrono::steady_clock::time_point t0 = on ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
  ~ProfileScope() {
    if (on)
      g_profile_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
  }
};

torch::Tensor as_float_contiguous(const torch::Tensor& x) {
  return x.scalar_type() == torch::kFloat ? x.contiguous() : x.to(torch::kFloat).contiguous();
}

torch::Tensor back_to(const torch::Tensor& y, const torch::Tensor& like) {
  return like.scalar_type() == torch::kFloat ? y : y.to(like.scalar_type());
}

// Per-row quantizers over [rows, d] float32 data.
void a8_rows(const float* in, float* out, int64_t rows, int64_t d) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(d, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) a8_row(in + r * d, out + r * d, d);
  });
}

void a4_rows(const float* in, float* out, int64_t rows, int64_t d) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(d, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) a4_row(in + r * d, out + r * d, d);
  });
}

double mean_abs(const float* w, int64_t n) {
  // Chunked double sums: deterministic for a given thread count and accurate to well below float eps.
  const int64_t chunk = 1 << 16;
  const int64_t nchunks = (n + chunk - 1) / chunk;
  std::vector<double> partial(nchunks, 0.0);
  at::parallel_for(0, nchunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double s = 0.0;
      for (int64_t i = c * chunk, e = std::min(n, (c + 1) * chunk); i < e; ++i) s += std::fabs(w[i]);
      partial[c] = s;
    }
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return n > 0 ? total / double(n) : 0.0;
}

struct TernaryFn : public torch::autograd::Function<TernaryFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext*, torch::Tensor w) { return ternary_weight_fused(w); }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                  torch::autograd::variable_list g) {
    return {g[0]};
  }
};
struct A8Fn : public torch::autograd::Function<A8Fn> {
  static torch::Tensor forward(torch::autograd::AutogradContext*, torch::Tensor x) { return act_quant_a8_fused(x); }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                  torch::autograd::variable_list g) {
    return {g[0]};
  }
};
struct A4Fn : public torch::autograd::Function<A4Fn> {
  static torch::Tensor forward(torch::autograd::AutogradContext*, torch::Tensor x) { return act_quant_a4_fused(x); }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext*,
                                                  torch::autograd::variable_list g) {
    return {g[0]};
  }
};

}  // namespace

void set_quant_profiling(bool on) { g_profiling = on; }
double quant_profile_seconds() { return double(g_profile_ns.load()) * 1e-9; }
void reset_quant_profile() { g_profile_ns = 0; }

torch::Tensor act_quant_a8_fused(const torch::Tensor& x) {
  // The fused kernels are CPU loops; on a GPU the tensor-op form runs there (same math).
  if (!x.is_cpu()) return act_quant_a8_reference(x).to(x.scalar_type());
  ProfileScope prof;
  torch::Tensor xf = as_float_contiguous(x);
  torch::Tensor y = torch::empty_like(xf);
  const int64_t d = xf.dim() == 0 ? 1 : xf.size(-1);
  a8_rows(xf.data_ptr<float>(), y.data_ptr<float>(), d ? xf.numel() / d : 0, d);
  return back_to(y, x);
}

torch::Tensor act_quant_a4_fused(const torch::Tensor& x) {
  if (!x.is_cpu()) return act_quant_a4_reference(x).to(x.scalar_type());
  ProfileScope prof;
  torch::Tensor xf = as_float_contiguous(x);
  torch::Tensor y = torch::empty_like(xf);
  const int64_t d = xf.dim() == 0 ? 1 : xf.size(-1);
  a4_rows(xf.data_ptr<float>(), y.data_ptr<float>(), d ? xf.numel() / d : 0, d);
  return back_to(y, x);
}

double ternary_scale(const torch::Tensor& w) {
  if (!w.is_cpu()) return std::max(w.to(torch::kFloat).abs().mean().item<double>(), kQuantEps);
  torch::Tensor wf = as_float_contiguous(w);
  return std::max(mean_abs(wf.data_ptr<float>(), wf.numel()), kQuantEps);
}

torch::Tensor ternary_weight_fused(const torch::Tensor& w) {
  if (!w.is_cpu()) return ternary_weight_reference(w).to(w.scalar_type());
  ProfileScope prof;
  torch::Tensor wf = as_float_contiguous(w);
  const int64_t n = wf.numel();
  const float g = float(std::max(mean_abs(wf.data_ptr<float>(), n), kQuantEps));
  torch::Tensor y = torch::empty_like(wf);
  const float* in = wf.data_ptr<float>();
  float* out = y.data_ptr<float>();
  at::parallel_for(0, n, 1 << 14, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const float v = std::min(1.0f, std::max(-1.0f, in[i] / g));
      out[i] = round_half_even(v) * g;
    }
  });
  return back_to(y, w);
}

torch::Tensor ternary_codes(const torch::Tensor& w) {
  torch::Tensor wf = as_float_contiguous(w);
  const float g = float(ternary_scale(wf));
  return torch::round(wf / g).clamp(-1, 1).to(torch::kInt8);
}

torch::Tensor ternary_weight_ste(const torch::Tensor& w) { return TernaryFn::apply(w); }
torch::Tensor act_quant_a8_ste(const torch::Tensor& x) { return A8Fn::apply(x); }
torch::Tensor act_quant_a4_ste(const torch::Tensor& x) { return A4Fn::apply(x); }

torch::Tensor ternary_weight_reference(const torch::Tensor& w) {
  torch::Tensor wf = w.to(torch::kFloat);
  torch::Tensor g = wf.abs().mean().clamp_min(kQuantEps);
  return torch::round(wf / g).clamp(-1, 1) * g;
}

torch::Tensor act_quant_a8_reference(const torch::Tensor& x) {
  torch::Tensor xf = x.to(torch::kFloat);
  torch::Tensor s = 127.0 / xf.abs().amax(-1, true).clamp_min(kQuantEps);
  return torch::round(xf * s).clamp(-128, 127) / s;
}

torch::Tensor act_quant_a4_reference(const torch::Tensor& x) {
  torch::Tensor xf = x.to(torch::kFloat);
  torch::Tensor b = xf.abs().mean(-1, true);
  return torch::round(xf * (std::sqrt(7.0) / (b + kQuantEps))).clamp(-8, 7) * (b / std::sqrt(7.0));
}

}  // namespace bkd

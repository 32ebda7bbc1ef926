#include "torch/kernels/rms_norm.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "torch/model/autocast_compat.h"
#include "torch/model/quant.h"
#include "torch/kernels/quant_rows.h"

namespace bkd {
namespace {

constexpr int64_t kRowsPerChunk = 32;  // fixed chunking: gain gradients sum in the same order for any thread count

// Row sums in double over eight interleaved partial sums, added in a fixed order: independent chains
// instead of one add-latency-bound chain, and the same result for any thread count.
template <typename T>
double sum_squares(const T* x, int64_t d) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= d; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += double(x[i + j]) * double(x[i + j]);
  for (; i < d; ++i) s[0] += double(x[i]) * double(x[i]);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

template <typename T>
double sum_products3(const T* a, const T* b, const T* c, int64_t d) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= d; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += double(a[i + j]) * double(b[i + j]) * double(c[i + j]);
  for (; i < d; ++i) s[0] += double(a[i]) * double(b[i]) * double(c[i]);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

template <typename T>
void forward_rows(const T* x, const T* g, T* y, T* rstd, int64_t rows, int64_t d, double eps) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(d, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* xr = x + r * d;
      T* yr = y + r * d;
      const T inv = T(1.0 / std::sqrt(sum_squares(xr, d) / double(d) + eps));
      rstd[r] = inv;
      for (int64_t i = 0; i < d; ++i) yr[i] = xr[i] * inv * g[i];
    }
  });
}

// dx = r * (dy*g) - x * r^3 * mean(dy*g*x);  dg = sum_rows dy * x * r
template <typename T>
void backward_rows(const T* x, const T* g, const T* rstd, const T* dy, T* dx, T* dg_partial, int64_t rows, int64_t d) {
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  at::parallel_for(0, chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      T* dgp = dg_partial + c * d;
      for (int64_t i = 0; i < d; ++i) dgp[i] = 0;
      for (int64_t r = c * kRowsPerChunk; r < std::min(rows, (c + 1) * kRowsPerChunk); ++r) {
        const T* xr = x + r * d;
        const T* dyr = dy + r * d;
        T* dxr = dx + r * d;
        const T inv = rstd[r];
        const T k = T(sum_products3(dyr, g, xr, d) / double(d)) * inv * inv * inv;
        for (int64_t i = 0; i < d; ++i) {
          dxr[i] = inv * dyr[i] * g[i] - xr[i] * k;
          dgp[i] += dyr[i] * xr[i] * inv;
        }
      }
    }
  });
}

torch::Tensor compute_type(const torch::Tensor& t) {
  return (t.scalar_type() == torch::kDouble ? t : t.to(torch::kFloat)).contiguous();
}

// What rms_norm_backward needs: x and gain in the compute type, 1/rms per row, the caller's dtypes.
void save_for_norm_backward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& gain,
                            const torch::Tensor& xc, const torch::Tensor& gc, const torch::Tensor& rstd) {
  ctx->save_for_backward({xc, gc, rstd});
  ctx->saved_data["in_dtype"] = int64_t(x.scalar_type());
  ctx->saved_data["gain_dtype"] = int64_t(gain.scalar_type());
}

// Gradients {dx, dgain, none} from the saved {x, gain, rstd} (x and gain in the compute type).
torch::autograd::variable_list rms_norm_backward(torch::autograd::AutogradContext* ctx, const torch::Tensor& grad) {
  auto s = ctx->get_saved_variables();
  const torch::Tensor &xc = s[0], &gc = s[1], &rstd = s[2];
  torch::Tensor dy = grad.to(xc.scalar_type()).contiguous();
  const int64_t d = xc.size(-1), rows = xc.numel() / d;
  const int64_t chunks = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  torch::Tensor dx = torch::empty_like(xc);
  torch::Tensor dgp = torch::empty({chunks, d}, xc.options());
  AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "rms_norm_bwd", [&] {
    backward_rows<scalar_t>(xc.data_ptr<scalar_t>(), gc.data_ptr<scalar_t>(), rstd.data_ptr<scalar_t>(),
                            dy.data_ptr<scalar_t>(), dx.data_ptr<scalar_t>(), dgp.data_ptr<scalar_t>(), rows, d);
  });
  auto in_dtype = c10::ScalarType(ctx->saved_data["in_dtype"].toInt());
  auto gain_dtype = c10::ScalarType(ctx->saved_data["gain_dtype"].toInt());
  return {dx.to(in_dtype), dgp.sum(0).to(gain_dtype), torch::Tensor()};
}

struct RmsNormFn : public torch::autograd::Function<RmsNormFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor gain,
                               double eps) {
    torch::Tensor xc = compute_type(x);
    torch::Tensor gc = gain.to(xc.scalar_type()).contiguous();
    const int64_t d = xc.size(-1), rows = xc.numel() / d;
    torch::Tensor y = torch::empty_like(xc);
    torch::Tensor rstd = torch::empty({rows}, xc.options());
    AT_DISPATCH_FLOATING_TYPES(xc.scalar_type(), "rms_norm_fwd", [&] {
      forward_rows<scalar_t>(xc.data_ptr<scalar_t>(), gc.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(),
                             rstd.data_ptr<scalar_t>(), rows, d, eps);
    });
    save_for_norm_backward(ctx, x, gain, xc, gc, rstd);
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                  torch::autograd::variable_list grads) {
    return rms_norm_backward(ctx, grads[0]);
  }
};

// Forward of rms_norm_quant for float32 input: per row, the norm into a row buffer (the same float
// values forward_rows writes), then the quantizer from it straight into the output type.
template <typename Out>
void norm_quant_rows(const float* x, const float* g, Out* y, float* rstd, int64_t rows, int64_t d, double eps,
                     NormQuant q) {
  at::parallel_for(0, rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(d, 1)), [&](int64_t r0, int64_t r1) {
    std::vector<float> n(static_cast<size_t>(d));
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * d;
      const float inv = float(1.0 / std::sqrt(sum_squares(xr, d) / double(d) + eps));
      rstd[r] = inv;
      for (int64_t i = 0; i < d; ++i) n[size_t(i)] = xr[i] * inv * g[i];
      if (q == NormQuant::A8) a8_row(n.data(), y + r * d, d);
      else a4_row(n.data(), y + r * d, d);
    }
  });
}

struct RmsNormQuantFn : public torch::autograd::Function<RmsNormQuantFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor x, torch::Tensor gain,
                               double eps, int64_t quant, int64_t out_dtype) {
    torch::Tensor xc = compute_type(x);  // float32 here (float64 takes the unfused path)
    torch::Tensor gc = gain.to(torch::kFloat).contiguous();
    const int64_t d = xc.size(-1), rows = xc.numel() / d;
    torch::Tensor y = torch::empty(xc.sizes(), xc.options().dtype(c10::ScalarType(out_dtype)));
    torch::Tensor rstd = torch::empty({rows}, xc.options());
    const NormQuant q = NormQuant(quant);
    if (y.scalar_type() == torch::kBFloat16)
      norm_quant_rows(xc.data_ptr<float>(), gc.data_ptr<float>(), y.data_ptr<c10::BFloat16>(), rstd.data_ptr<float>(),
                      rows, d, eps, q);
    else
      norm_quant_rows(xc.data_ptr<float>(), gc.data_ptr<float>(), y.data_ptr<float>(), rstd.data_ptr<float>(), rows,
                      d, eps, q);
    save_for_norm_backward(ctx, x, gain, xc, gc, rstd);
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                  torch::autograd::variable_list grads) {
    auto g = rms_norm_backward(ctx, grads[0]);
    g.push_back(torch::Tensor());
    g.push_back(torch::Tensor());
    return g;
  }
};

}  // namespace

torch::Tensor rms_norm_fused(const torch::Tensor& x, const torch::Tensor& gain, double eps) {
  // The fused kernel is a CPU loop; on a GPU autograd differentiates the tensor-op form there.
  if (!x.is_cpu()) return rms_norm_reference(x, gain, eps);
  return RmsNormFn::apply(x, gain, eps);
}

torch::Tensor rms_norm_quant(const torch::Tensor& x, const torch::Tensor& gain, double eps, NormQuant q) {
  if (!x.is_cpu() || x.scalar_type() == torch::kDouble) {
    torch::Tensor n = rms_norm_fused(x, gain, eps);
    return q == NormQuant::A8 ? act_quant_a8_ste(n) : act_quant_a4_ste(n);
  }
  const bool bf16 = autocast_enabled(at::kCPU) && autocast_dtype(at::kCPU) == torch::kBFloat16;
  return RmsNormQuantFn::apply(x, gain, eps, int64_t(q), int64_t(bf16 ? torch::kBFloat16 : torch::kFloat));
}

torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& gain, double eps) {
  torch::Tensor xf = x.scalar_type() == torch::kDouble ? x : x.to(torch::kFloat);
  return xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps) * gain;
}

}  // namespace bkd

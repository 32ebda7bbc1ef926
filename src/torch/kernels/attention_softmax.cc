#include "torch/kernels/attention_softmax.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/util/error.h"
#include "torch/kernels/softmax_kernels.h"

namespace bkd {

namespace {

// Rows of the [B, H, Tq, Tk] scores in parallel; `fn(row, mask_row)` with the mask row of that query.
template <typename Fn>
void for_rows(int64_t B, int64_t H, int64_t Tq, int64_t Tk, bool mask_per_batch, Fn fn) {
  const int64_t rows = B * H * Tq;
  at::parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(Tk, 1)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t b = r / (H * Tq), q = r % Tq;
      fn(r, (mask_per_batch ? b * Tq : 0) + q);
    }
  });
}

struct AttentionSoftmaxFn : public torch::autograd::Function<AttentionSoftmaxFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor scores, torch::Tensor mask,
                               double scale, std::string kernel) {
    const SoftmaxKernels& k = softmax_kernels(kernel);
    torch::Tensor s = scores.contiguous();
    torch::Tensor m = mask.to(torch::kFloat).contiguous();
    const int64_t B = s.size(0), H = s.size(1), Tq = s.size(2), Tk = s.size(3);
    torch::Tensor p = torch::empty(s.sizes(), s.options().dtype(torch::kFloat));
    const bool bf16 = s.scalar_type() == torch::kBFloat16;
    torch::Tensor out = bf16 ? torch::empty_like(s) : p;
    float* pp = p.data_ptr<float>();
    const float* mp = m.data_ptr<float>();
    const float sc = float(scale);
    for_rows(B, H, Tq, Tk, m.size(0) > 1, [&](int64_t r, int64_t mr) {
      float* pr = pp + r * Tk;
      const float* mrow = mp + mr * Tk;
      if (bf16) k.bf16_to_float(bf16_bits(s) + r * Tk, pr, Tk);
      const float* sr = bf16 ? pr : s.data_ptr<float>() + r * Tk;
      for (int64_t j = 0; j < Tk; ++j) pr[j] = sr[j] * sc + mrow[j];
      k.softmax(pr, Tk);
      if (bf16) k.float_to_bf16(pr, bf16_bits(out) + r * Tk, Tk);
    });
    ctx->save_for_backward({p});
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["kernel"] = kernel;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                  torch::autograd::variable_list grads) {
    const SoftmaxKernels& k = softmax_kernels(ctx->saved_data["kernel"].toStringRef());
    const torch::Tensor p = ctx->get_saved_variables()[0];
    const float sc = float(ctx->saved_data["scale"].toDouble());
    torch::Tensor dp = grads[0].contiguous();
    const bool bf16 = dp.scalar_type() == torch::kBFloat16;
    if (!bf16 && dp.scalar_type() != torch::kFloat) dp = dp.to(torch::kFloat);
    const int64_t B = p.size(0), H = p.size(1), Tq = p.size(2), Tk = p.size(3);
    torch::Tensor ds = torch::empty(p.sizes(), p.options().dtype(bf16 ? torch::kBFloat16 : torch::kFloat));
    const float* pp = p.data_ptr<float>();
    at::parallel_for(0, B * H * Tq, std::max<int64_t>(1, 4096 / std::max<int64_t>(Tk, 1)), [&](int64_t r0, int64_t r1) {
      std::vector<float> dpf(bf16 ? size_t(Tk) : 0), dsf(bf16 ? size_t(Tk) : 0);
      for (int64_t r = r0; r < r1; ++r) {
        if (bf16) {
          k.bf16_to_float(bf16_bits(dp) + r * Tk, dpf.data(), Tk);
          k.softmax_backward(pp + r * Tk, dpf.data(), dsf.data(), Tk, sc);
          k.float_to_bf16(dsf.data(), bf16_bits(ds) + r * Tk, Tk);
        } else {
          k.softmax_backward(pp + r * Tk, dp.data_ptr<float>() + r * Tk, ds.data_ptr<float>() + r * Tk, Tk, sc);
        }
      }
    });
    return {ds, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor attention_softmax(const torch::Tensor& scores, const torch::Tensor& mask, double scale,
                                const char* kernel) {
  const auto t = scores.scalar_type();
  if (!scores.is_cpu() || scores.dim() != 4 || (t != torch::kFloat && t != torch::kBFloat16))
    return attention_softmax_reference(scores, mask, scale);
  if (mask.dim() != 4 || mask.size(1) != 1 || mask.size(2) != scores.size(2) || mask.size(3) != scores.size(3) ||
      (mask.size(0) != 1 && mask.size(0) != scores.size(0)))
    throw Error("attention_softmax: mask of shape " + std::to_string(mask.size(0)) + "x" + std::to_string(mask.size(1)) +
                " does not broadcast over the scores");
  return AttentionSoftmaxFn::apply(scores, mask, scale, std::string(kernel ? kernel : ""));
}

torch::Tensor attention_softmax_reference(const torch::Tensor& scores, const torch::Tensor& mask, double scale) {
  torch::Tensor s = scores.scalar_type() == torch::kDouble ? scores : scores.to(torch::kFloat);
  return torch::softmax(s * scale + mask, -1);
}

}  // namespace bkd

#include "torch/kernels/token_nll.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/util/error.h"
#include "torch/kernels/softmax_kernels.h"

namespace bkd {
namespace {

// Row r of the logits as float32: the row itself, or converted into `buf`.
const float* row_as_float(const SoftmaxKernels& k, const torch::Tensor& z, int64_t r, int64_t V,
                          std::vector<float>& buf) {
  if (z.scalar_type() == torch::kFloat) return z.data_ptr<float>() + r * V;
  k.bf16_to_float(bf16_bits(z) + r * V, buf.data(), V);
  return buf.data();
}

struct TokenNllFn : public torch::autograd::Function<TokenNllFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor logits, torch::Tensor targets,
                               std::string kernel) {
    const SoftmaxKernels& k = softmax_kernels(kernel);
    const int64_t V = logits.size(-1);
    torch::Tensor z = logits.reshape({-1, V}).contiguous();
    torch::Tensor t = targets.reshape({-1}).to(torch::kLong).contiguous();
    const int64_t N = z.size(0);
    if (t.numel() != N)
      throw Error("token_nll: " + std::to_string(t.numel()) + " targets for " + std::to_string(N) + " logit rows");
    if (N > 0) {
      const int64_t lo = t.min().item<int64_t>(), hi = t.max().item<int64_t>();
      if (lo < 0 || hi >= V)
        throw Error("token_nll: target id " + std::to_string(lo < 0 ? lo : hi) + " is outside the vocabulary of " +
                    std::to_string(V));
    }
    torch::Tensor nll = torch::empty({N}, z.options().dtype(torch::kFloat));
    torch::Tensor lse = torch::empty({N}, z.options().dtype(torch::kFloat));
    const int64_t* tp = t.data_ptr<int64_t>();
    at::parallel_for(0, N, std::max<int64_t>(1, 32768 / std::max<int64_t>(V, 1)), [&](int64_t r0, int64_t r1) {
      std::vector<float> buf(z.scalar_type() == torch::kFloat ? 0 : size_t(V));
      for (int64_t r = r0; r < r1; ++r) {
        const float* zr = row_as_float(k, z, r, V, buf);
        const double l = k.logsumexp(zr, V);
        lse.data_ptr<float>()[r] = float(l);
        nll.data_ptr<float>()[r] = float(l - double(zr[tp[r]]));
      }
    });
    ctx->save_for_backward({z, t, lse});
    ctx->saved_data["kernel"] = kernel;
    ctx->saved_data["shape"] = logits.sizes();
    return nll;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                  torch::autograd::variable_list grads) {
    const SoftmaxKernels& k = softmax_kernels(ctx->saved_data["kernel"].toStringRef());
    auto saved = ctx->get_saved_variables();
    const torch::Tensor &z = saved[0], &t = saved[1], &lse = saved[2];
    torch::Tensor g = grads[0].to(torch::kFloat).contiguous();
    const int64_t N = z.size(0), V = z.size(1);
    torch::Tensor dz = torch::empty_like(z);
    const bool bf16 = z.scalar_type() == torch::kBFloat16;
    const int64_t* tp = t.data_ptr<int64_t>();
    at::parallel_for(0, N, std::max<int64_t>(1, 32768 / std::max<int64_t>(V, 1)), [&](int64_t r0, int64_t r1) {
      std::vector<float> buf(bf16 ? size_t(V) : 0), out(bf16 ? size_t(V) : 0);
      for (int64_t r = r0; r < r1; ++r) {
        const float gr = g.data_ptr<float>()[r];
        if (gr == 0.0f) {  // masked positions: no gradient
          if (bf16) std::fill_n(dz.data_ptr<c10::BFloat16>() + r * V, V, c10::BFloat16(0.0f));
          else std::fill_n(dz.data_ptr<float>() + r * V, V, 0.0f);
          continue;
        }
        const float* zr = row_as_float(k, z, r, V, buf);
        float* o = bf16 ? out.data() : dz.data_ptr<float>() + r * V;
        k.scaled_softmax(zr, V, lse.data_ptr<float>()[r], gr, o);
        o[tp[r]] -= gr;
        if (bf16) k.float_to_bf16(o, bf16_bits(dz) + r * V, V);
      }
    });
    return {dz.view(ctx->saved_data["shape"].toIntVector()), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

torch::Tensor token_nll(const torch::Tensor& logits, const torch::Tensor& targets, const char* kernel) {
  const auto dt = logits.scalar_type();
  if (!logits.is_cpu() || (dt != torch::kFloat && dt != torch::kBFloat16)) return token_nll_reference(logits, targets);
  return TokenNllFn::apply(logits, targets, std::string(kernel ? kernel : ""));
}

torch::Tensor token_nll_reference(const torch::Tensor& logits, const torch::Tensor& targets) {
  torch::Tensor z = logits.reshape({-1, logits.size(-1)});
  if (z.scalar_type() != torch::kDouble) z = z.to(torch::kFloat);
  return torch::nll_loss(torch::log_softmax(z, -1), targets.reshape({-1}), {}, at::Reduction::None);
}

}  // namespace bkd

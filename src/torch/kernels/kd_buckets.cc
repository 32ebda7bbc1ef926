#include "torch/kernels/kd_buckets.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/util/error.h"
#include "torch/kernels/softmax_kernels.h"

namespace bkd {
namespace {

// Other is taken as 1 - (candidates' mass) when that is at least this share of the row's mass;
// below it the difference would lose digits and Other is summed entry by entry.
constexpr double kOtherBySubtraction = 0.01;
constexpr float kInf = std::numeric_limits<float>::infinity();

// Row r of logits / T as float32 in `buf`.
void load_row(const SoftmaxKernels& k, const torch::Tensor& z, int64_t r, int64_t V, float inv_t, float* buf) {
  if (z.scalar_type() == torch::kFloat) std::copy_n(z.data_ptr<float>() + r * V, V, buf);
  else k.bf16_to_float(bf16_bits(z) + r * V, buf, V);
  if (inv_t != 1.0f)
    for (int64_t j = 0; j < V; ++j) buf[j] *= inv_t;
}

// The distinct ids of a row, ascending.
void distinct(const int64_t* ids, int64_t K, std::vector<int64_t>& out) {
  out.assign(ids, ids + K);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
}

struct StudentBucketsFn : public torch::autograd::Function<StudentBucketsFn> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, torch::Tensor logits, torch::Tensor ids,
                               torch::Tensor has_any, double temperature, std::string kernel) {
    const SoftmaxKernels& k = softmax_kernels(kernel);
    const int64_t V = logits.size(-1);
    torch::Tensor z = logits.reshape({-1, V}).contiguous();
    torch::Tensor id = ids.to(torch::kLong).contiguous();
    torch::Tensor any = has_any.to(torch::kBool).contiguous();
    const int64_t N = z.size(0), K = id.size(1);
    if (id.size(0) != N || any.numel() != N)
      throw Error("student_log_buckets: " + std::to_string(id.size(0)) + " id rows and " + std::to_string(any.numel()) +
                  " flags for " + std::to_string(N) + " logit rows");
    if (id.numel() > 0 && (id.min().item<int64_t>() < 0 || id.max().item<int64_t>() >= V))
      throw Error("student_log_buckets: candidate ids must lie in [0, " + std::to_string(V) + ")",
                  "point padding at a real candidate of the row first");
    torch::Tensor out = torch::empty({N, K + 1}, z.options().dtype(torch::kFloat));
    torch::Tensor lse = torch::empty({N}, out.options()), lse_rest = torch::empty({N}, out.options());
    const float inv_t = float(1.0 / temperature);
    at::parallel_for(0, N, std::max<int64_t>(1, 16384 / std::max<int64_t>(V, 1)), [&](int64_t r0, int64_t r1) {
      std::vector<float> buf(static_cast<size_t>(V));
      std::vector<int64_t> set;
      for (int64_t r = r0; r < r1; ++r) {
        load_row(k, z, r, V, inv_t, buf.data());
        const int64_t* ir = id.data_ptr<int64_t>() + r * K;
        float* o = out.data_ptr<float>() + r * (K + 1);
        const double l = k.logsumexp(buf.data(), V);
        for (int64_t c = 0; c < K; ++c) o[c] = float(double(buf[size_t(ir[c])]) - l);
        double lr = l;  // a row without candidates: Other is everything
        if (any.data_ptr<bool>()[r]) {
          distinct(ir, K, set);
          double top = 0;
          for (int64_t j : set) top += std::exp(double(buf[size_t(j)]) - l);
          if (1.0 - top >= kOtherBySubtraction) {
            lr = l + std::log1p(-top);
          } else {
            for (int64_t j : set) buf[size_t(j)] = -kInf;
            lr = k.logsumexp(buf.data(), V);
          }
        }
        o[K] = float(lr - l);
        lse.data_ptr<float>()[r] = float(l);
        lse_rest.data_ptr<float>()[r] = float(lr);
      }
    });
    ctx->save_for_backward({z, id, any, lse, lse_rest});
    ctx->saved_data["temperature"] = temperature;
    ctx->saved_data["kernel"] = kernel;
    ctx->saved_data["shape"] = logits.sizes();
    return out;
  }

  // dz_j = sum over buckets b of g_b d(log q_b)/dz_j, with s = softmax(z) and r = s / exp(lse_rest - lse)
  // on the non-candidates: c * s_j off the candidates (c = g_other e^(lse - lse_rest) - G, G = sum g),
  // sum_{k: id_k = j} g_k - G s_j on them; then divided by T.
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                  torch::autograd::variable_list grads) {
    const SoftmaxKernels& k = softmax_kernels(ctx->saved_data["kernel"].toStringRef());
    auto saved = ctx->get_saved_variables();
    const torch::Tensor &z = saved[0], &id = saved[1], &any = saved[2], &lse = saved[3], &lse_rest = saved[4];
    const double temperature = ctx->saved_data["temperature"].toDouble();
    const float inv_t = float(1.0 / temperature);
    torch::Tensor g = grads[0].to(torch::kFloat).contiguous();
    const int64_t N = z.size(0), V = z.size(1), K = id.size(1);
    torch::Tensor dz = torch::empty_like(z);
    const bool bf16 = z.scalar_type() == torch::kBFloat16;
    at::parallel_for(0, N, std::max<int64_t>(1, 16384 / std::max<int64_t>(V, 1)), [&](int64_t r0, int64_t r1) {
      std::vector<float> buf(static_cast<size_t>(V)), o(static_cast<size_t>(V));
      std::vector<int64_t> set;
      for (int64_t r = r0; r < r1; ++r) {
        const float* gr = g.data_ptr<float>() + r * (K + 1);
        double G = 0;
        for (int64_t c = 0; c <= K; ++c) G += gr[c];
        bool zero = true;
        for (int64_t c = 0; c <= K; ++c) zero = zero && gr[c] == 0.0f;
        float* out = bf16 ? o.data() : dz.data_ptr<float>() + r * V;
        if (zero) {  // masked rows
          std::fill_n(out, V, 0.0f);
        } else {
          load_row(k, z, r, V, inv_t, buf.data());
          const float l = lse.data_ptr<float>()[r], lr = lse_rest.data_ptr<float>()[r];
          const int64_t* ir = id.data_ptr<int64_t>() + r * K;
          const bool has_any = any.data_ptr<bool>()[r];
          const double rest_scale = lr == -kInf ? 0.0 : std::exp(double(l) - double(lr));
          const double c = double(gr[K]) * (has_any ? rest_scale : 1.0) - G;
          k.scaled_softmax(buf.data(), V, l, float(c), out);
          if (has_any) {  // candidates are not in Other: their entry is -G s_j plus their own buckets
            distinct(ir, K, set);
            for (int64_t j : set) out[j] = float(-G * std::exp(double(buf[size_t(j)]) - double(l)));
          }
          for (int64_t b = 0; b < K; ++b) out[ir[b]] += gr[b];
          if (inv_t != 1.0f)
            for (int64_t j = 0; j < V; ++j) out[j] *= inv_t;
        }
        if (bf16) k.float_to_bf16(out, bf16_bits(dz) + r * V, V);
      }
    });
    return {dz.view(ctx->saved_data["shape"].toIntVector()), torch::Tensor(), torch::Tensor(), torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

torch::Tensor student_log_buckets(const torch::Tensor& logits, const torch::Tensor& ids, const torch::Tensor& has_any,
                                  double temperature, const char* kernel) {
  const auto dt = logits.scalar_type();
  if (!logits.is_cpu() || (dt != torch::kFloat && dt != torch::kBFloat16))
    return student_log_buckets_reference(logits, ids, has_any, temperature);
  return StudentBucketsFn::apply(logits, ids, has_any, temperature, std::string(kernel ? kernel : ""));
}

torch::Tensor student_log_buckets_reference(const torch::Tensor& logits, const torch::Tensor& ids,
                                            const torch::Tensor& has_any, double temperature) {
  torch::Tensor z = logits.reshape({-1, logits.size(-1)});
  z = (z.scalar_type() == torch::kDouble ? z : z.to(torch::kFloat)) / temperature;
  torch::Tensor lse = torch::logsumexp(z, -1, true);
  torch::Tensor s_top = z.gather(1, ids) - lse;
  // A row without candidates keeps every id in Other: its ids write their own value back.
  torch::Tensor keep = has_any.reshape({-1, 1}).expand_as(ids);
  torch::Tensor removed = torch::where(keep, torch::full({}, -std::numeric_limits<double>::infinity(), z.options()),
                                       z.gather(1, ids));
  torch::Tensor s_other = torch::logsumexp(z.scatter(1, ids, removed), -1, true) - lse;
  return torch::cat({s_top, s_other}, 1);
}

}  // namespace bkd

// The fused attention softmax against the tensor-op form: float32 and bf16 scores, a causal mask
// shared by the batch and a per-sequence key-padding mask, every kernel this CPU runs; gradients
// against the reference's and against finite differences.
#include "torch/kernels/attention_softmax.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "torch/kernels/softmax_kernels.h"

namespace bkd {
namespace {

// Additive mask [Bm, 1, T, T]: causal, and with per_batch each sequence also hides its last `b` keys
// (its padding) from every query but the key's own.
torch::Tensor causal_mask(int64_t Bm, int64_t T) {
  torch::Tensor allowed = torch::ones({T, T}, torch::kBool).tril().view({1, 1, T, T}).repeat({Bm, 1, 1, 1});
  for (int64_t b = 1; b < Bm; ++b)
    for (int64_t k = std::max<int64_t>(0, T - b); k < T; ++k)
      for (int64_t q = 0; q < T; ++q)
        if (q != k) allowed[b][0][q][k] = false;
  return torch::zeros({Bm, 1, T, T}).masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
}

TEST(AttentionSoftmax, EveryKernelMatchesTheReferenceInFloat32AndBf16) {
  torch::manual_seed(41);
  const int64_t B = 3, H = 2;
  for (int64_t T : {1, 5, 33}) {
    for (int64_t Bm : {int64_t(1), B}) {
      torch::Tensor mask = causal_mask(Bm, T);
      for (const std::string& kernel : runnable_softmax_kernels()) {
        for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
          SCOPED_TRACE(kernel + " T=" + std::to_string(T) + " Bm=" + std::to_string(Bm) +
                       (dtype == torch::kBFloat16 ? " bf16" : " f32"));
          torch::Tensor s = (torch::randn({B, H, T, T}) * 4).to(dtype).requires_grad_(true);
          torch::Tensor s2 = s.detach().clone().requires_grad_(true);
          torch::Tensor p = attention_softmax(s, mask, 0.25, kernel.c_str());
          torch::Tensor p2 = attention_softmax_reference(s2, mask, 0.25);
          ASSERT_EQ(p.scalar_type(), dtype);
          const double tol = dtype == torch::kFloat ? 1e-6 : 4e-3;  // bf16: the output cast (8 bits)
          EXPECT_TRUE(torch::allclose(p.to(torch::kFloat), p2, tol, 1e-7)) << (p.to(torch::kFloat) - p2).abs().max();
          EXPECT_TRUE(torch::allclose(p.to(torch::kFloat).sum(-1), torch::ones({B, H, T}), 2e-2, 0));
          torch::Tensor up = torch::randn({B, H, T, T});
          (p.to(torch::kFloat) * up).sum().backward();
          (p2 * up).sum().backward();
          ASSERT_EQ(s.grad().scalar_type(), dtype);
          const double gtol = dtype == torch::kFloat ? 1e-5 : 2e-2;
          EXPECT_TRUE(torch::allclose(s.grad().to(torch::kFloat), s2.grad().to(torch::kFloat), gtol, gtol))
              << (s.grad().to(torch::kFloat) - s2.grad().to(torch::kFloat)).abs().max();
        }
      }
    }
  }
}

// float32 gradient against central differences of the reference computed in double.
TEST(AttentionSoftmax, BackwardMatchesFiniteDifferences) {
  torch::manual_seed(42);
  const int64_t B = 2, H = 1, T = 6;
  torch::Tensor mask = causal_mask(B, T);
  torch::Tensor s = torch::randn({B, H, T, T}).requires_grad_(true);
  torch::Tensor up = torch::randn({B, H, T, T});
  (attention_softmax(s, mask, 0.5) * up).sum().backward();
  torch::NoGradGuard ng;
  torch::Tensor sd = s.detach().to(torch::kDouble), md = mask.to(torch::kDouble), ud = up.to(torch::kDouble);
  auto f = [&](const torch::Tensor& x) { return (attention_softmax_reference(x, md, 0.5) * ud).sum().item<double>(); };
  const double h = 1e-6;
  for (int64_t i = 0; i < s.numel(); ++i) {
    torch::Tensor e = torch::zeros({s.numel()}, torch::kDouble);
    e[i] = h;
    e = e.view(s.sizes());
    EXPECT_NEAR(s.grad().view({-1})[i].item<double>(), (f(sd + e) - f(sd - e)) / (2 * h), 2e-5) << i;
  }
}

}  // namespace
}  // namespace bkd

namespace bkd {
namespace {

// The row kernels' bf16 conversions against c10::BFloat16, bit for bit: halfway cases both ways,
// NaN, infinities, signed zero, subnormals, and rows that end mid-vector.
TEST(SoftmaxKernels, Bf16ConversionsMatchC10BitForBit) {
  std::vector<float> x;
  for (uint32_t bits : {0x3F808000u, 0x3F818000u, 0x3F80C000u, 0x7F800000u, 0xFF800000u, 0x7FC00001u, 0x80000000u,
                        0x00000001u, 0x00808000u, 0x7F7FFFFFu, 0xBF7FFFFFu}) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    x.push_back(f);
  }
  torch::manual_seed(43);
  torch::Tensor r = torch::randn({200}) * 1000;
  for (int64_t i = 0; i < r.numel(); ++i) x.push_back(r[i].item<float>());
  for (const std::string& name : runnable_softmax_kernels()) {
    const SoftmaxKernels& k = softmax_kernels(name);
    for (size_t n : {x.size(), x.size() - 3, size_t(5)}) {
      SCOPED_TRACE(name + " n=" + std::to_string(n));
      std::vector<uint16_t> h(n);
      k.float_to_bf16(x.data(), h.data(), int64_t(n));
      std::vector<float> back(n);
      k.bf16_to_float(h.data(), back.data(), int64_t(n));
      for (size_t i = 0; i < n; ++i) {
        const c10::BFloat16 ref(x[i]);
        EXPECT_EQ(h[i], ref.x) << "entry " << i << " value " << x[i];
        const float rf = float(ref);
        EXPECT_EQ(std::memcmp(&back[i], &rf, sizeof rf), 0) << "entry " << i;
      }
    }
  }
}

}  // namespace
}  // namespace bkd

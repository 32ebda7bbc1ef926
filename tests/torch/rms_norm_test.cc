#include "torch/kernels/rms_norm.h"

#include <gtest/gtest.h>

#include <memory>

#include "torch/model/autocast_compat.h"
#include "torch/model/quant.h"

namespace bkd {
namespace {

TEST(TorchRmsNorm, FusedMatchesReferenceForwardAndBackward) {
  torch::manual_seed(31);
  for (int64_t d : {1, 7, 64, 257}) {
    SCOPED_TRACE(d);
    torch::Tensor x = (torch::randn({3, 37, d}) * 3).requires_grad_(true);
    torch::Tensor g = (1 + 0.1 * torch::randn({d})).requires_grad_(true);
    torch::Tensor x2 = x.detach().clone().requires_grad_(true), g2 = g.detach().clone().requires_grad_(true);
    torch::Tensor up = torch::randn({3, 37, d});
    torch::Tensor y = rms_norm_fused(x, g, 1e-5), y2 = rms_norm_reference(x2, g2, 1e-5);
    EXPECT_TRUE(torch::allclose(y, y2, 1e-5, 1e-6));
    (y * up).sum().backward();
    (y2 * up).sum().backward();
    EXPECT_TRUE(torch::allclose(x.grad(), x2.grad(), 1e-4, 1e-5));
    EXPECT_TRUE(torch::allclose(g.grad(), g2.grad(), 1e-4, 1e-4));
  }
  // bf16 input (autocast activations): computed in float32, gradient returned as bf16
  torch::Tensor xb = torch::randn({4, 16}).to(torch::kBFloat16).requires_grad_(true);
  torch::Tensor gb = torch::ones({16}, torch::requires_grad());
  torch::Tensor yb = rms_norm_fused(xb, gb, 1e-5);
  EXPECT_EQ(yb.scalar_type(), torch::kFloat);
  yb.sum().backward();
  EXPECT_EQ(xb.grad().scalar_type(), torch::kBFloat16);
}

TEST(TorchRmsNorm, BackwardMatchesFiniteDifferences) {
  torch::manual_seed(32);
  torch::Tensor x = torch::randn({5, 9}, torch::kDouble).requires_grad_(true);
  torch::Tensor g = (1 + 0.2 * torch::randn({9}, torch::kDouble)).requires_grad_(true);
  torch::Tensor up = torch::randn({5, 9}, torch::kDouble);
  (rms_norm_fused(x, g, 1e-5) * up).sum().backward();
  auto f = [&](const torch::Tensor& xx, const torch::Tensor& gg) {
    return (rms_norm_reference(xx, gg, 1e-5) * up).sum().item<double>();
  };
  torch::NoGradGuard ng;
  const double h = 1e-6;
  for (int64_t i = 0; i < 45; ++i) {
    torch::Tensor e = torch::zeros({45}, torch::kDouble);
    e[i] = h;
    e = e.view({5, 9});
    EXPECT_NEAR(x.grad().view({-1})[i].item<double>(), (f(x + e, g) - f(x - e, g)) / (2 * h), 1e-7);
  }
  for (int64_t i = 0; i < 9; ++i) {
    torch::Tensor e = torch::zeros({9}, torch::kDouble);
    e[i] = h;
    EXPECT_NEAR(g.grad()[i].item<double>(), (f(x, g + e) - f(x, g - e)) / (2 * h), 1e-7);
  }
}

}  // namespace
}  // namespace bkd

namespace bkd {
namespace {

// Autocast on the CPU in bf16 for the scope (the trainer's forward pass).
struct CpuBf16Autocast {
  CpuBf16Autocast() { set_autocast(at::kCPU, at::kBFloat16, true); }
  ~CpuBf16Autocast() {
    set_autocast_enabled(at::kCPU, false);
    at::autocast::clear_cache();
  }
};

// The fused norm + quantizer gives exactly the unfused chain's values (norm, quantizer, cast), in
// float32 without autocast and in bf16 under CPU autocast, and its gradient is RMSNorm's.
TEST(TorchRmsNormQuant, EqualsNormThenQuantizerAndPassesTheNormGradient) {
  torch::manual_seed(33);
  for (NormQuant q : {NormQuant::A8, NormQuant::A4}) {
    for (int64_t d : {1, 7, 64, 257}) {
      for (bool autocast : {false, true}) {
        SCOPED_TRACE(std::string(q == NormQuant::A8 ? "A8" : "A4") + " d=" + std::to_string(d) +
                     (autocast ? " autocast" : ""));
        torch::Tensor x = (torch::randn({3, 37, d}) * 3).requires_grad_(true);
        torch::Tensor g = (1 + 0.1 * torch::randn({d})).requires_grad_(true);
        torch::Tensor x2 = x.detach().clone().requires_grad_(true), g2 = g.detach().clone().requires_grad_(true);
        torch::Tensor y, y2;
        {
          std::unique_ptr<CpuBf16Autocast> ac(autocast ? new CpuBf16Autocast : nullptr);
          y = rms_norm_quant(x, g, 1e-5, q);
          torch::Tensor n = rms_norm_fused(x2, g2, 1e-5);
          y2 = q == NormQuant::A8 ? act_quant_a8_ste(n) : act_quant_a4_ste(n);
        }
        ASSERT_EQ(y.scalar_type(), autocast ? torch::kBFloat16 : torch::kFloat);
        EXPECT_TRUE(torch::equal(y, y2.to(y.scalar_type()))) << (y.to(torch::kFloat) - y2).abs().max().item<double>();
        torch::Tensor up = torch::randn({3, 37, d});
        // The unfused chain with the cast the next matmul would do (so both gradients arrive in bf16).
        (y.to(torch::kFloat) * up).sum().backward();
        (y2.to(y.scalar_type()).to(torch::kFloat) * up).sum().backward();
        EXPECT_TRUE(torch::allclose(x.grad(), x2.grad(), 1e-3, 1e-4));
        EXPECT_TRUE(torch::allclose(g.grad(), g2.grad(), 1e-3, 1e-3));
      }
    }
  }
}

}  // namespace
}  // namespace bkd

#include "torch/rms_norm.h"

#include <gtest/gtest.h>

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

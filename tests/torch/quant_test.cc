#include "torch/model/quant.h"

#include <gtest/gtest.h>

#include "torch_fixtures.h"

namespace bkd {
namespace {

// Kernels and references may sum |x| in different orders: a value sitting on a rounding boundary may
// land one quantization step apart. Everything else must agree to float rounding.
void expect_quant_close(const torch::Tensor& got, const torch::Tensor& want, const torch::Tensor& step,
                        const char* what) {
  torch::Tensor diff = (got.to(torch::kDouble) - want.to(torch::kDouble)).abs();
  torch::Tensor stepd = step.to(torch::kDouble).expand_as(diff);
  torch::Tensor tiny = diff <= 1e-6 * (stepd + want.to(torch::kDouble).abs()) + 1e-30;
  torch::Tensor one_step = (diff - stepd).abs() <= 1e-4 * stepd;
  EXPECT_TRUE((tiny | one_step).all().item<bool>()) << what << ": an element differs by more than one step";
  const double flipped = (~tiny).sum().item<double>() / double(diff.numel());
  EXPECT_LE(flipped, 0.01) << what << ": too many boundary flips";
}

torch::Tensor a8_step(const torch::Tensor& x) { return x.abs().amax(-1, true).clamp_min(kQuantEps) / 127.0; }
torch::Tensor a4_step(const torch::Tensor& x) { return x.abs().mean(-1, true) / std::sqrt(7.0); }
torch::Tensor ternary_step(const torch::Tensor& w) { return w.abs().mean().clamp_min(kQuantEps).reshape({1, 1}); }

TEST(TorchQuant, FusedKernelsMatchPyTorchGolden) {
  BKD_NEED_FIXTURES();
  auto f = test::load_fixture("quant");
  expect_quant_close(act_quant_a8_fused(f["x"]), f["a8"], a8_step(f["x"]), "a8");
  expect_quant_close(act_quant_a4_fused(f["x"]), f["a4"], a4_step(f["x"]), "a4");
  expect_quant_close(ternary_weight_fused(f["w"]), f["ternary"], ternary_step(f["w"]), "ternary");
  // the all-zero row stays zero (eps guards the scale)
  EXPECT_EQ(act_quant_a8_fused(f["x"])[5].abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(act_quant_a4_fused(f["x"])[5].abs().sum().item<float>(), 0.0f);
}

TEST(TorchQuant, StraightThroughGradientsMatchDetachTrickGolden) {
  BKD_NEED_FIXTURES();
  auto f = test::load_fixture("quant");
  struct Case { const char* name; torch::Tensor (*fn)(const torch::Tensor&); torch::Tensor in, up; };
  for (const Case& c : {Case{"a8", act_quant_a8_ste, f["x"], f["gy"]}, Case{"a4", act_quant_a4_ste, f["x"], f["gy"]},
                        Case{"ternary", ternary_weight_ste, f["w"], f["gw"]}}) {
    torch::Tensor leaf = c.in.clone().requires_grad_(true);
    (c.fn(leaf) * c.up).sum().backward();
    EXPECT_LT(test::rel_err(leaf.grad(), f[std::string(c.name) + "_grad"]), 1e-7) << c.name;
  }
}

TEST(TorchQuant, FusedMatchesReferenceOverOddShapesAndBf16) {
  torch::manual_seed(7);
  for (int64_t d : {1, 3, 17, 64, 257}) {
    torch::Tensor x = torch::randn({5, 3, d}) * 4;
    expect_quant_close(act_quant_a8_fused(x), act_quant_a8_reference(x), a8_step(x), "a8");
    expect_quant_close(act_quant_a4_fused(x), act_quant_a4_reference(x), a4_step(x), "a4");
    torch::Tensor w = torch::randn({d, 7}) * 0.1;
    expect_quant_close(ternary_weight_fused(w), ternary_weight_reference(w), ternary_step(w), "ternary");
  }
  torch::Tensor xb = (torch::randn({9, 33}) * 3).to(torch::kBFloat16);
  torch::Tensor yb = act_quant_a8_fused(xb);
  EXPECT_EQ(yb.scalar_type(), torch::kBFloat16);
  // bf16 output = the float result rounded to bf16
  EXPECT_LT(test::rel_err(yb, act_quant_a8_reference(xb)), 1e-2);
}

TEST(TorchQuant, CodesAreTernaryAndLevelsAreBounded) {
  torch::manual_seed(8);
  torch::Tensor w = torch::randn({64, 32});
  torch::Tensor codes = ternary_codes(w);
  EXPECT_EQ(codes.scalar_type(), torch::kInt8);
  EXPECT_TRUE(((codes == -1) | (codes == 0) | (codes == 1)).all().item<bool>());
  EXPECT_TRUE(torch::allclose(codes.to(torch::kFloat) * ternary_scale(w), ternary_weight_fused(w)));
  torch::Tensor x = torch::randn({16, 100}) * 10;
  torch::Tensor lv8 = act_quant_a8_fused(x) / a8_step(x);
  EXPECT_LE(lv8.max().item<float>(), 127.001f);
  EXPECT_GE(lv8.min().item<float>(), -128.001f);
  EXPECT_LT((lv8 - lv8.round()).abs().max().item<float>(), 1e-3);
  torch::Tensor lv4 = act_quant_a4_fused(x) / a4_step(x);
  EXPECT_LE(lv4.max().item<float>(), 7.001f);
  EXPECT_GE(lv4.min().item<float>(), -8.001f);
  // 4-bit absmean clips: some values saturate at the ends of [-8, 7]
  EXPECT_GT((lv4.abs() > 6.99).sum().item<int64_t>(), 0);
}

}  // namespace
}  // namespace bkd

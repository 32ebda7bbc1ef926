// Activation quantizers: the exact integer codes the training-time fake quantizers imply.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "core/engine/act_quant.h"

namespace bkd {
namespace {

// A float x with fl(x * s) == target exactly (searching the neighbours of target / s).
float tie_input(float target, float s) {
  float x = target / s;
  for (int i = 0; i < 64 && x * s != target; ++i) x = std::nextafter(x, x * s < target ? 1e30f : -1e30f);
  EXPECT_EQ(x * s, target);
  return x;
}

TEST(EngineActQuant, A8RoundsHalfToEvenAndPadsWithZeros) {
  // max|x| = 1, so s = (1/1) * 127 = 127; inputs land exactly on .5 ties, which go to the even code.
  const float s = 127.0f;
  const std::vector<float> x = {1.0f, tie_input(2.5f, s), tie_input(3.5f, s), tie_input(-2.5f, s),
                                tie_input(-0.5f, s), tie_input(0.49f, s), -1.0f};
  QuantizedActs q;
  quantize_acts(ActBits::A8, x.data(), 1, 7, 7, &q);
  EXPECT_EQ(q.cols_padded, 256);
  const std::vector<int8_t> expect = {127, 2, 4, -2, 0, 0, -127};
  EXPECT_EQ(std::vector<int8_t>(q.row(0), q.row(0) + 7), expect);
  for (int64_t k = 7; k < 256; ++k) ASSERT_EQ(q.row(0)[k], 0);
  EXPECT_EQ(q.sum[0], 127 + 2 + 4 - 2 - 127);
  EXPECT_FLOAT_EQ(q.mult[0], 1.0f / 127.0f);
}

TEST(EngineActQuant, A8MatchesTheFormulaPerToken) {
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t rows = 5, cols = 300, stride = 310;
  std::vector<float> x(static_cast<size_t>(rows * stride));
  for (auto& v : x) v = nd(rng);
  x[2 * stride + 17] = 40.0f;  // one outlier token
  QuantizedActs q;
  quantize_acts(ActBits::A8, x.data(), rows, cols, stride, &q);
  for (int64_t m = 0; m < rows; ++m) {
    float mx = 0;
    for (int64_t k = 0; k < cols; ++k) mx = std::max(mx, std::fabs(x[m * stride + k]));
    const float s = (1.0f / mx) * 127.0f;
    int32_t sum = 0;
    for (int64_t k = 0; k < cols; ++k) {
      const float r = std::nearbyint(x[m * stride + k] * s);
      ASSERT_EQ(q.row(m)[k], static_cast<int>(r)) << m << "," << k;
      sum += static_cast<int>(r);
    }
    EXPECT_EQ(q.sum[m], sum);
    EXPECT_FLOAT_EQ(q.mult[m], 1.0f / s);
  }
}

TEST(EngineActQuant, A4ClampsToMinus8And7) {
  // mean|x| = 1 (so sqrt(7) x / (b + eps) ~ 2.6458 x); the outliers clamp.
  const std::vector<float> x = {10.0f, -10.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f,
                                0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
  QuantizedActs q;
  quantize_acts(ActBits::A4, x.data(), 1, 20, 20, &q);
  EXPECT_EQ(q.row(0)[0], 7);
  EXPECT_EQ(q.row(0)[1], -8);
  EXPECT_EQ(q.sum[0], -1);
  EXPECT_FLOAT_EQ(q.mult[0], 1.0f / std::sqrt(7.0f));
}

TEST(EngineActQuant, A4MatchesTheFormulaAndStaysInRange) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  const int64_t rows = 4, cols = 513;
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (auto& v : x) v = nd(rng);
  QuantizedActs q;
  quantize_acts(ActBits::A4, x.data(), rows, cols, cols, &q);
  for (int64_t m = 0; m < rows; ++m) {
    double b = 0;
    for (int64_t k = 0; k < cols; ++k) b += std::fabs(x[m * cols + k]);
    const float bf = static_cast<float>(b / cols);
    for (int64_t k = 0; k < cols; ++k) {
      const int code = q.row(m)[k];
      ASSERT_GE(code, -8);
      ASSERT_LE(code, 7);
      const float t = x[m * cols + k] * ((1.0f / (bf + 1e-5f)) * std::sqrt(7.0f));
      ASSERT_EQ(code, static_cast<int>(std::max(-8.0f, std::min(7.0f, std::nearbyint(t)))));
    }
    EXPECT_NEAR(q.mult[m], bf / std::sqrt(7.0f), 1e-6f);
  }
}

TEST(EngineActQuant, ZeroTokensQuantizeToZero) {
  const std::vector<float> x(40, 0.0f);
  for (ActBits bits : {ActBits::A8, ActBits::A4}) {
    QuantizedActs q;
    quantize_acts(bits, x.data(), 2, 20, 20, &q);
    for (int64_t k = 0; k < 20; ++k) ASSERT_EQ(q.row(1)[k], 0);
    std::vector<float> f(20, 1.0f);
    fake_quant_row(bits, x.data(), 20, f.data());
    for (float v : f) ASSERT_EQ(v, 0.0f);
  }
}

TEST(EngineActQuant, FakeQuantEqualsCodesTimesMultiplier) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(100);
  for (auto& v : x) v = nd(rng);
  for (ActBits bits : {ActBits::A8, ActBits::A4}) {
    QuantizedActs q;
    quantize_acts(bits, x.data(), 1, 100, 100, &q);
    std::vector<float> f(100);
    fake_quant_row(bits, x.data(), 100, f.data());
    for (int k = 0; k < 100; ++k) EXPECT_NEAR(f[k], q.row(0)[k] * q.mult[0], 1e-6f * (1 + std::fabs(f[k])));
  }
}

}  // namespace
}  // namespace bkd

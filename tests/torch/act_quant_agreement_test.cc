// The packed engine (core/engine/act_quant.cc) and the trainer (torch/model/quant.cc, fused kernels)
// quantize activations with one scalar definition (core/engine/act_quant_row.h). This checks, bit for
// bit, that what the trainer computes is what the engine's integer codes stand for, on the inputs
// where two implementations could part: every float within 64 ulps of every code boundary of A8 and
// A4, for several row scales, and random rows.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <random>

#include "core/engine/act_quant.h"
#include "torch/model/quant.h"

namespace bkd {
namespace {

constexpr int64_t kD = 256;
constexpr int kUlps = 64;

// `n` consecutive floats centred on `v` (v's neighbours, below and above, in ulps).
std::vector<float> around(float v, int n) {
  std::vector<float> out;
  float lo = v;
  for (int i = 0; i < n / 2; ++i) lo = std::nextafter(lo, -INFINITY);
  for (int i = 0; i < n; ++i, lo = std::nextafter(lo, INFINITY)) out.push_back(lo);
  return out;
}

// A8 rows: the anchor A fixes max|x| (so s = (1/A) * 127), the other 255 entries straddle the
// boundary (k + 0.5) / s of one code k.
std::vector<float> a8_boundary_rows() {
  std::vector<float> rows;
  for (float anchor : {1.0f, 0.37f, 3.1e-3f, 17.25f, 2.0e-5f}) {
    const float s = (1.0f / std::max(anchor, kActEps)) * 127.0f;
    for (int k = -127; k <= 126; ++k) {  // -127.5 would exceed the anchor's magnitude
      rows.push_back(anchor);
      const auto probes = around((static_cast<float>(k) + 0.5f) / s, kD - 1);
      rows.insert(rows.end(), probes.begin(), probes.end());
    }
  }
  return rows;
}

// A4 rows: 128 anchors of magnitude A dominate the mean; 128 probes straddle the boundary of one code
// k under the row's own scale. The probes move the mean a little, so they are placed against the
// scale of the row they end up in (three refinements settle it to within the probe window).
std::vector<float> a4_boundary_rows() {
  std::vector<float> rows;
  for (float anchor : {1.0f, 0.37f, 3.1e-3f, 17.25f}) {
    for (int k = -8; k <= 6; ++k) {
      std::vector<float> row(kD, anchor);
      for (int it = 0; it < 3; ++it) {
        const float pre = a4_pre_scale(a4_row_mean(row.data(), kD));
        const auto probes = around((static_cast<float>(k) + 0.5f) / pre, kD / 2);
        std::copy(probes.begin(), probes.end(), row.begin() + kD / 2);
      }
      rows.insert(rows.end(), row.begin(), row.end());
    }
  }
  return rows;
}

std::vector<float> random_rows(int n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> rows(static_cast<size_t>(n) * kD);
  for (int r = 0; r < n; ++r) {
    const float scale = std::pow(10.0f, static_cast<float>(r % 9) - 5.0f);
    for (int64_t c = 0; c < kD; ++c) rows[r * kD + c] = g(rng) * scale;
  }
  return rows;
}

// The engine's codes, mapped to values the way the trainer sees them (code / s, code * b / sqrt(7)),
// against the trainer's fused quantizer; and the engine's own fake-quant row against both.
void expect_engine_matches_trainer(ActBits bits, const std::vector<float>& x) {
  const int64_t rows = static_cast<int64_t>(x.size()) / kD;
  QuantizedActs q;
  quantize_acts(bits, x.data(), rows, kD, kD, &q);
  torch::Tensor xt = torch::from_blob(const_cast<float*>(x.data()), {rows, kD}, torch::kFloat).clone();
  torch::Tensor yt = bits == ActBits::A8 ? act_quant_a8_fused(xt) : act_quant_a4_fused(xt);
  const float* y = yt.data_ptr<float>();
  std::vector<float> fake(static_cast<size_t>(kD));
  int64_t mismatches = 0, codes_seen = 0;
  std::vector<bool> seen(256, false);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data() + r * kD;
    fake_quant_row(bits, xr, kD, fake.data());
    const float s = bits == ActBits::A8 ? a8_row_scale(xr, kD) : 0.0f;
    const float b = bits == ActBits::A4 ? a4_row_mean(xr, kD) : 0.0f;
    for (int64_t c = 0; c < kD; ++c) {
      const int code = q.row(r)[c];
      const float from_code = bits == ActBits::A8 ? static_cast<float>(code) / s : static_cast<float>(code) * a4_code_value(b);
      const float trainer = y[r * kD + c];
      const bool same = std::memcmp(&from_code, &trainer, sizeof(float)) == 0 &&
                        std::memcmp(&fake[c], &trainer, sizeof(float)) == 0;
      if (!same && mismatches++ < 5)
        ADD_FAILURE() << to_string(bits) << " row " << r << " col " << c << ": x " << xr[c] << " engine code " << code
                      << " -> " << from_code << ", engine fake " << fake[c] << ", trainer " << trainer;
      if (!seen[static_cast<size_t>(code + 128)]) seen[static_cast<size_t>(code + 128)] = true, ++codes_seen;
    }
  }
  EXPECT_EQ(mismatches, 0);
  // The probes reached every code on both sides of every boundary: A8 -127..127 (-128 needs
  // |x| > max|x|), A4 -8..7.
  EXPECT_EQ(codes_seen, bits == ActBits::A8 ? 255 : 16);
}

TEST(ActQuantAgreement, A8EngineCodesAreTheTrainersValuesAtEveryBoundary) {
  std::vector<float> x = a8_boundary_rows();
  const auto r = random_rows(64, 7);
  x.insert(x.end(), r.begin(), r.end());
  expect_engine_matches_trainer(ActBits::A8, x);
}

TEST(ActQuantAgreement, A4EngineCodesAreTheTrainersValuesAtEveryBoundary) {
  std::vector<float> x = a4_boundary_rows();
  const auto r = random_rows(64, 11);
  x.insert(x.end(), r.begin(), r.end());
  expect_engine_matches_trainer(ActBits::A4, x);
}

}  // namespace
}  // namespace bkd

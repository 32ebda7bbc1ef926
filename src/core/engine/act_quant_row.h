#pragma once
// The scalar activation quantizer, one definition for the packed engine (act_quant.cc: integer codes
// for the ternary kernels) and the trainer (torch/kernels/quant_rows.h: the fake-quantized values
// training sees). fp32 arithmetic in torch's order, round half to even like torch.round:
//   A8 (absmax): s = (1 / max(max|x|, eps)) * 127;          code = round(clamp(x * s, -128, 127)); x ~ code / s
//   A4 (absmean): b = mean|x| (double sum, eight partials);
//                 pre = (1 / (b + eps)) * sqrt(7);         code = round(clamp(x * pre, -8, 7));   x ~ code * (b / sqrt(7))
// Clamping before rounding equals rounding before clamping here: the bounds are integers.
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace bkd {

constexpr float kActEps = 1e-5f;
constexpr float kActSqrt7 = 2.6457513110645907f;

// Round half to even for |v| well below 2^22 (callers clamp first): adding and subtracting 1.5 * 2^23
// leaves the nearest integer under the default rounding mode, and vectorizes with plain SSE2.
inline float round_half_even(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}

// A8: the scale s of a row. (1 / max) * 127, not 127 / max: torch evaluates `127 / t` as
// reciprocal(t) * 127.
inline float a8_row_scale(const float* x, int64_t d) {
  float amax = 0.0f;
  for (int64_t i = 0; i < d; ++i) amax = std::max(amax, std::fabs(x[i]));
  return (1.0f / std::max(amax, kActEps)) * 127.0f;
}
inline float a8_code(float x, float s) { return round_half_even(std::min(127.0f, std::max(-128.0f, x * s))); }

// A4: the row's mean |x|, the scale before rounding and the value of one code. The sum is in
// double over eight interleaved partial sums (element i into partial i % 8), added in order 0..7:
// one running sum is a chain of dependent additions (~4 cycles per element), and eight partials are
// one 8-lane vector, so the kernel sets' copies (KernelSet::quantize_a4) are bit for bit this.
constexpr int kA4MeanPartials = 8;
inline float a4_row_mean(const float* x, int64_t d) {
  double part[kA4MeanPartials] = {};
  for (int64_t i = 0; i < d; ++i) part[i % kA4MeanPartials] += std::fabs(static_cast<double>(x[i]));
  double sum = 0.0;
  for (int j = 0; j < kA4MeanPartials; ++j) sum += part[j];
  return static_cast<float>(sum / static_cast<double>(d));
}
inline float a4_pre_scale(float mean) { return (1.0f / (mean + kActEps)) * kActSqrt7; }
inline float a4_code_value(float mean) { return mean / kActSqrt7; }
inline float a4_code(float x, float pre) { return round_half_even(std::min(7.0f, std::max(-8.0f, x * pre))); }

}  // namespace bkd

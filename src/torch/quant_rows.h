#pragma once
// One row of the activation quantizers (quant.h formulas), shared by the quantizer kernels and the
// fused norm + quantizer (rms_norm.h). `Out` is float, or c10::BFloat16 when the result feeds a bf16
// matmul (the conversion rounds to nearest even, as a cast of the float result would).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "torch/quant.h"

namespace bkd {

// Round half to even for |v| well below 2^22 (callers clamp first): adding and subtracting 1.5 * 2^23
// leaves the nearest integer under the default rounding mode, and vectorizes with plain SSE2.
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
  return (v + kMagic) - kMagic;
}

// A8, per row: s = 127 / max(max|x|, eps); y = clamp(round(x * s), -128, 127) / s.
template <typename Out>
inline void a8_row(const float* x, Out* y, int64_t d) {
  float amax = 0.0f;
  for (int64_t i = 0; i < d; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float s = (1.0f / std::max(amax, float(kQuantEps))) * 127.0f;  // as torch's 127 / t
  for (int64_t i = 0; i < d; ++i) {
    const float v = std::min(127.0f, std::max(-128.0f, x[i] * s));
    y[i] = Out(round_even(v) / s);
  }
}

// A4, per row: b = mean|x|; y = clamp(round(x * sqrt(7) / (b + eps)), -8, 7) * b / sqrt(7).
template <typename Out>
inline void a4_row(const float* x, Out* y, int64_t d) {
  constexpr float kSqrt7 = 2.6457513110645907f;
  double sum = 0.0;
  for (int64_t i = 0; i < d; ++i) sum += std::fabs(x[i]);
  const float b = float(sum / double(d));
  const float scale = (1.0f / (b + float(kQuantEps))) * kSqrt7;
  const float deq = b / kSqrt7;
  for (int64_t i = 0; i < d; ++i) {
    const float v = std::min(7.0f, std::max(-8.0f, x[i] * scale));
    y[i] = Out(round_even(v) * deq);
  }
}

}  // namespace bkd

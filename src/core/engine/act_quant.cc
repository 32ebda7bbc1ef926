#include "core/engine/act_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/engine/ternary_format.h"

namespace bkd {
namespace {

constexpr float kSqrt7 = 2.6457513110645907f;

// Scale applied before rounding, and the multiplier that maps codes back to values.
struct RowScale {
  float pre, mult;
};

RowScale a8_scale(const float* x, int64_t cols) {
  float mx = 0;
  for (int64_t k = 0; k < cols; ++k) mx = std::max(mx, std::fabs(x[k]));
  // (1 / max) * 127, not 127 / max: torch evaluates `127 / t` as reciprocal(t) * 127, and the
  // training-side fused quantizer (src/torch/quant.cc) copies that, so the codes agree bit for bit.
  const float s = (1.0f / std::max(mx, kActEps)) * 127.0f;
  return {s, 1.0f / s};
}

float a4_mean(const float* x, int64_t cols) {
  double sum = 0;
  for (int64_t k = 0; k < cols; ++k) sum += std::fabs(x[k]);
  return static_cast<float>(sum / static_cast<double>(cols));
}

inline int a8_code(float x, float s) {
  return static_cast<int>(std::min(127.0f, std::max(-128.0f, std::nearbyint(x * s))));
}
// pre = (1 / (b + eps)) * sqrt(7), evaluated in that order as the training side does.
inline float a4_pre(float b) { return (1.0f / (b + kActEps)) * kSqrt7; }
inline int a4_code(float x, float pre) {
  return static_cast<int>(std::min(7.0f, std::max(-8.0f, std::nearbyint(x * pre))));
}

}  // namespace

const char* to_string(ActBits b) { return b == ActBits::A8 ? "a8" : "a4"; }

void quantize_acts(ActBits bits, const float* x, int64_t rows, int64_t cols, int64_t x_stride, QuantizedActs* out) {
  out->bits = bits;
  out->rows = rows;
  out->cols = cols;
  out->cols_padded = ternary_padded_cols(cols);
  out->q.resize(static_cast<size_t>(rows * out->cols_padded));
  out->mult.resize(static_cast<size_t>(rows));
  out->sum.resize(static_cast<size_t>(rows));
  for (int64_t m = 0; m < rows; ++m) {
    const float* xr = x + m * x_stride;
    int8_t* q = out->q.data() + m * out->cols_padded;
    int32_t sum = 0;
    if (bits == ActBits::A8) {
      const RowScale sc = a8_scale(xr, cols);
      for (int64_t k = 0; k < cols; ++k) sum += q[k] = static_cast<int8_t>(a8_code(xr[k], sc.pre));
      out->mult[m] = sc.mult;
    } else {
      const float b = a4_mean(xr, cols);
      const float pre = a4_pre(b);
      for (int64_t k = 0; k < cols; ++k) sum += q[k] = static_cast<int8_t>(a4_code(xr[k], pre));
      out->mult[m] = b / kSqrt7;
    }
    std::memset(q + cols, 0, static_cast<size_t>(out->cols_padded - cols));
    out->sum[m] = sum;
  }
}

void fake_quant_row(ActBits bits, const float* x, int64_t cols, float* out) {
  if (bits == ActBits::A8) {
    const RowScale sc = a8_scale(x, cols);
    for (int64_t k = 0; k < cols; ++k) out[k] = static_cast<float>(a8_code(x[k], sc.pre)) / sc.pre;
  } else {
    const float b = a4_mean(x, cols);
    const float pre = a4_pre(b);
    for (int64_t k = 0; k < cols; ++k) out[k] = static_cast<float>(a4_code(x[k], pre)) * (b / kSqrt7);
  }
}

}  // namespace bkd

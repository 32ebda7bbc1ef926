#include "core/engine/act_quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/engine/ternary_format.h"

namespace bkd {
namespace {

const float kSqrt7 = std::sqrt(7.0f);

// Scale applied before rounding, and the multiplier that maps codes back to values.
struct RowScale {
  float pre, mult;
};

RowScale a8_scale(const float* x, int64_t cols) {
  float mx = 0;
  for (int64_t k = 0; k < cols; ++k) mx = std::max(mx, std::fabs(x[k]));
  const float s = 127.0f / std::max(mx, kActEps);
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
inline int a4_code(float x, float denom) {
  return static_cast<int>(std::min(7.0f, std::max(-8.0f, std::nearbyint(kSqrt7 * x / denom))));
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
      const float denom = b + kActEps;
      for (int64_t k = 0; k < cols; ++k) sum += q[k] = static_cast<int8_t>(a4_code(xr[k], denom));
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
    for (int64_t k = 0; k < cols; ++k) out[k] = b / kSqrt7 * static_cast<float>(a4_code(x[k], b + kActEps));
  }
}

}  // namespace bkd

#include "core/engine/act_quant.h"

#include <cstring>

#include "core/engine/act_quant_row.h"
#include "core/engine/ternary_format.h"

namespace bkd {
const char* to_string(ActBits b) { return b == ActBits::A8 ? "a8" : "a4"; }

void shape_acts(ActBits bits, int64_t rows, int64_t cols, QuantizedActs* out) {
  out->bits = bits;
  out->rows = rows;
  out->cols = cols;
  out->cols_padded = ternary_padded_cols(cols);
  out->q.resize(static_cast<size_t>(rows * out->cols_padded));
  out->mult.resize(static_cast<size_t>(rows));
  out->sum.resize(static_cast<size_t>(rows));
  out->gemm_layout_ready = false;
}

int32_t quantize_a8_codes(const float* x, int64_t cols, int8_t* q, float* mult) {
  const float s = a8_row_scale(x, cols);
  int32_t sum = 0;
  for (int64_t k = 0; k < cols; ++k) sum += q[k] = static_cast<int8_t>(a8_code(x[k], s));
  *mult = 1.0f / s;
  return sum;
}

int32_t quantize_a4_codes(const float* x, int64_t cols, int8_t* q, float* mult) {
  const float b = a4_row_mean(x, cols);
  const float pre = a4_pre_scale(b);
  int32_t sum = 0;
  for (int64_t k = 0; k < cols; ++k) sum += q[k] = static_cast<int8_t>(a4_code(x[k], pre));
  *mult = a4_code_value(b);
  return sum;
}

void quantize_act_row(const float* xr, int64_t m, QuantizedActs* out, QuantizeRowFn a8, QuantizeRowFn a4) {
  const int64_t cols = out->cols;
  int8_t* q = out->q.data() + m * out->cols_padded;
  out->sum[m] = (out->bits == ActBits::A8 ? a8 : a4)(xr, cols, q, &out->mult[m]);
  std::memset(q + cols, 0, static_cast<size_t>(out->cols_padded - cols));
}

void quantize_acts(ActBits bits, const float* x, int64_t rows, int64_t cols, int64_t x_stride, QuantizedActs* out) {
  shape_acts(bits, rows, cols, out);
  for (int64_t m = 0; m < rows; ++m) quantize_act_row(x + m * x_stride, m, out);
}

void fake_quant_row(ActBits bits, const float* x, int64_t cols, float* out) {
  if (bits == ActBits::A8) {
    const float s = a8_row_scale(x, cols);
    for (int64_t k = 0; k < cols; ++k) out[k] = a8_code(x[k], s) / s;
  } else {
    const float b = a4_row_mean(x, cols);
    const float pre = a4_pre_scale(b);
    for (int64_t k = 0; k < cols; ++k) out[k] = a4_code(x[k], pre) * a4_code_value(b);
  }
}

}  // namespace bkd

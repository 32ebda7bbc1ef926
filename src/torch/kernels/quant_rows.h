#pragma once
// One row of the activation quantizers, shared by the quantizer kernels and the fused norm +
// quantizer (rms_norm.h); the scalar arithmetic is the packed engine's own (core/engine/act_quant_row.h). `Out` is float, or c10::BFloat16 when the result feeds a bf16
// matmul (the conversion rounds to nearest even, as a cast of the float result would).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/engine/act_quant_row.h"
#include "torch/model/quant.h"

namespace bkd {

// A8, per row: y = code / s (act_quant_row.h).
template <typename Out>
inline void a8_row(const float* x, Out* y, int64_t d) {
  const float s = a8_row_scale(x, d);
  for (int64_t i = 0; i < d; ++i) y[i] = Out(a8_code(x[i], s) / s);
}

// A4, per row: y = code * b / sqrt(7) (act_quant_row.h).
template <typename Out>
inline void a4_row(const float* x, Out* y, int64_t d) {
  const float b = a4_row_mean(x, d);
  const float pre = a4_pre_scale(b), deq = a4_code_value(b);
  for (int64_t i = 0; i < d; ++i) y[i] = Out(a4_code(x[i], pre) * deq);
}

}  // namespace bkd

#pragma once
// Per-token activation quantization with the one scalar quantizer the trainer also uses
// (act_quant_row.h): A8 absmax (BitNet b1.58) and A4 absmean (BitNet a4.8).
// The integer codes feed the ternary kernels; `mult` turns their int32 sums back into floats.
#include <cstdint>
#include <vector>

#include "core/engine/act_quant_row.h"
#include "core/engine/aligned_buffer.h"

namespace bkd {

enum class ActBits { A8, A4 };
const char* to_string(ActBits b);

// rows tokens of cols features, each row zero-padded to cols_padded (a multiple of 256) so the
// kernels can read whole blocks.
struct QuantizedActs {
  ActBits bits = ActBits::A8;
  int64_t rows = 0, cols = 0, cols_padded = 0;
  AlignedBuffer<int8_t> q;     // rows * cols_padded
  std::vector<float> mult;     // per row: x ~ q * mult (A8: 1/s, A4: b/sqrt(7))
  std::vector<int32_t> sum;    // per row: sum of q (undoes the +1 offset of the weight codes)
  // q laid out for a kernel set's GEMM (KernelSet::prepare_gemm), used only while
  // gemm_layout_ready. shape_acts clears it (every quantization pass starts there); code that writes
  // q without shaping first must clear it too. (quantize_act_row does not: rows run on several
  // threads at once.)
  AlignedBuffer<int8_t> gemm_layout;
  bool gemm_layout_ready = false;

  const int8_t* row(int64_t m) const { return q.data() + m * cols_padded; }
};

// x is (rows, cols) with row stride x_stride floats.
void quantize_acts(ActBits bits, const float* x, int64_t rows, int64_t cols, int64_t x_stride, QuantizedActs* out);

// Shapes `out` for rows x cols (contents undefined until each row is quantized).
void shape_acts(ActBits bits, int64_t rows, int64_t cols, QuantizedActs* out);
// The A8 quantizer of one row (act_quant_row.h): cols codes into q, 1 / s into *mult; returns the
// codes' sum. The kernel sets carry bit-exact copies (KernelSet::quantize_a8).
int32_t quantize_a8_codes(const float* x, int64_t cols, int8_t* q, float* mult);
// The A4 quantizer of one row: cols codes in [-8, 7] into q, b / sqrt(7) into *mult; returns the
// codes' sum. The kernel sets carry bit-exact copies (KernelSet::quantize_a4).
int32_t quantize_a4_codes(const float* x, int64_t cols, int8_t* q, float* mult);
using QuantizeRowFn = int32_t (*)(const float* x, int64_t cols, int8_t* q, float* mult);

// Quantizes one row of cols floats into row m of an already shaped `out` (what quantize_acts does
// for every row; the engine calls it right after normalizing the row, while it is in L1), A8 rows
// through `a8`, A4 rows through `a4`.
void quantize_act_row(const float* x, int64_t m, QuantizedActs* out, QuantizeRowFn a8 = quantize_a8_codes,
                      QuantizeRowFn a4 = quantize_a4_codes);

// One row of fake quantization in floats (the value training sees): for tests and references.
void fake_quant_row(ActBits bits, const float* x, int64_t cols, float* out);

}  // namespace bkd

#pragma once
// ggml block encodings of ternary matrices, for files llama.cpp reads (core/format/llama_cpp_gguf.h).
// Every encoding here is exact on the ternary codes; only the scale is rounded (to fp16: every block
// of a matrix carries d = fp16(absmean scale), so dequantized weight = code * d, relative error of
// d <= 2^-11 for scales >= 2^-14, fp16's smallest normal; below it the absolute error is <= 2^-25).
// A scale fp16 cannot hold (0 or > 65504) is an Error.
//
//   TQ2_0: 256 weights per block, 66 bytes: qs[64] then fp16 d. Code c = w + 1 in 2 bits. Byte
//          32*h + m (h = 0, 1; m < 32) holds weights 128*h + m + 32*n in bits 2n..2n+1 (n = 0..3).
//   TQ1_0: 256 weights per block, 54 bytes: qs[48], qh[4], fp16 d. Five trits per byte, stored as
//          ceil(v * 256 / 243) where v is the base-3 number of the trits (first weight most
//          significant): qs[m] (m < 32) packs weights m + 32*n (n = 0..4) of the first 160;
//          qs[32 + m] (m < 16) packs weights 160 + m + 16*n; qh[j] packs weights 240 + j + 4*n
//          (n = 0..3) as four trits followed by a zero trit.
//   Q4_0:  32 weights per block, 18 bytes: fp16 d then qs[16]; weight = (nibble - 8) * d, byte j
//          holds weight j (low nibble) and weight j + 16 (high nibble). Used only where a row's
//          length is not a multiple of 256 (TQ1_0/TQ2_0 cannot hold it): exact, at 4.5 bits/weight.
#include <cstdint>
#include <string>
#include <vector>

#include "core/engine/ternary_format.h"
#include "core/util/gguf_writer.h"

namespace bkd {

uint16_t float_to_fp16(float f);  // round to nearest even; overflow -> inf
float fp16_to_float(uint16_t h);

int64_t ggml_block_weights(GgmlType t);  // 256 (TQ1_0, TQ2_0) or 32 (Q4_0)
int64_t ggml_block_bytes(GgmlType t);    // 66, 54 or 18
// Whether rows of `cols` weights can be stored in t.
inline bool ggml_fits_rows(GgmlType t, int64_t cols) { return cols % ggml_block_weights(t) == 0; }

// The matrix's rows in t (rows * cols / block_weights blocks). Throws Error when cols does not fit.
std::string encode_ternary_blocks(const TernaryMatrix& m, GgmlType t);

// Reference decoder (tests): the codes (w in {-1, 0, +1}, row-major) and each block's scale.
// Throws Error on a code that is not ternary or a size that does not match.
void decode_ternary_blocks(const std::string& bytes, GgmlType t, int64_t rows, int64_t cols, std::vector<int8_t>& w,
                           std::vector<float>& block_scale);

}  // namespace bkd

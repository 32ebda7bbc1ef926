#pragma once
// Full-precision-ish tables for the token embedding and the LM head: (rows, cols) with rows = vocab.
// Stored as fp32 (tests, small exported models), bf16 (16-bit) or int8 with one absmax scale per row
// (8-bit); the 7B dry-run uses the 16- or 8-bit forms so the 131M-entry tables stay small.
#include <cstdint>
#include <vector>

#include "core/engine/aligned_buffer.h"

namespace bkd {

enum class TableFormat { F32, BF16, I8 };
const char* to_string(TableFormat f);
// Bytes per element; constexpr so that kernels templated on the format get it at compile time.
constexpr int64_t table_element_bytes(TableFormat f) { return f == TableFormat::F32 ? 4 : f == TableFormat::BF16 ? 2 : 1; }

struct EmbeddingTable {
  TableFormat format = TableFormat::F32;
  int64_t rows = 0, cols = 0;
  AlignedBuffer<uint8_t> data;   // rows * cols * element size
  std::vector<float> row_scale;  // I8 only: value = q * row_scale[row]

  int64_t element_bytes() const { return table_element_bytes(format); }
  uint64_t bytes() const { return static_cast<uint64_t>(rows * cols * element_bytes()) + row_scale.size() * 4; }
  const uint8_t* row_data(int64_t r) const { return data.data() + r * cols * element_bytes(); }
  void allocate(TableFormat f, int64_t rows, int64_t cols);
  void lookup(int64_t row, float* out) const;  // dequantized row
};

// Converts an fp32 (rows, cols) table: BF16 rounds to nearest even; I8 uses absmax per row
// (scale = max|row| / 127, q = round(x / scale)).
EmbeddingTable make_table(TableFormat f, const float* w, int64_t rows, int64_t cols);

inline float bf16_to_float(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
uint16_t float_to_bf16(float f);

}  // namespace bkd

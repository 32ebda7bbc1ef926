#include "core/engine/embedding_table.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace bkd {

const char* to_string(TableFormat f) {
  switch (f) {
    case TableFormat::F32: return "f32";
    case TableFormat::BF16: return "bf16";
    case TableFormat::I8: return "i8";
  }
  return "?";
}

uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1);  // round to nearest even
  return static_cast<uint16_t>(u >> 16);
}

void EmbeddingTable::allocate(TableFormat f, int64_t r, int64_t c) {
  format = f;
  rows = r;
  cols = c;
  data.resize(static_cast<size_t>(r * c * element_bytes()));
  row_scale.assign(f == TableFormat::I8 ? static_cast<size_t>(r) : 0, 1.0f);
}

void EmbeddingTable::lookup(int64_t row, float* out) const {
  const uint8_t* p = row_data(row);
  switch (format) {
    case TableFormat::F32: std::memcpy(out, p, static_cast<size_t>(cols) * 4); break;
    case TableFormat::BF16: {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(p);
      for (int64_t k = 0; k < cols; ++k) out[k] = bf16_to_float(h[k]);
      break;
    }
    case TableFormat::I8: {
      const int8_t* q = reinterpret_cast<const int8_t*>(p);
      for (int64_t k = 0; k < cols; ++k) out[k] = static_cast<float>(q[k]) * row_scale[row];
      break;
    }
  }
}

EmbeddingTable make_table(TableFormat f, const float* w, int64_t rows, int64_t cols) {
  EmbeddingTable t;
  t.allocate(f, rows, cols);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = w + r * cols;
    if (f == TableFormat::F32) {
      std::memcpy(t.data.data() + r * cols * 4, x, static_cast<size_t>(cols) * 4);
    } else if (f == TableFormat::BF16) {
      uint16_t* h = reinterpret_cast<uint16_t*>(t.data.data()) + r * cols;
      for (int64_t k = 0; k < cols; ++k) h[k] = float_to_bf16(x[k]);
    } else {
      float mx = 0;
      for (int64_t k = 0; k < cols; ++k) mx = std::max(mx, std::fabs(x[k]));
      const float scale = mx > 0 ? mx / 127.0f : 1.0f;
      int8_t* q = reinterpret_cast<int8_t*>(t.data.data()) + r * cols;
      for (int64_t k = 0; k < cols; ++k) q[k] = static_cast<int8_t>(std::nearbyint(x[k] / scale));
      t.row_scale[r] = scale;
    }
  }
  return t;
}

}  // namespace bkd

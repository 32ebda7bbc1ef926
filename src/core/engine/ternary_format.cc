#include "core/engine/ternary_format.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "core/util/error.h"

namespace bkd {

void TernaryMatrix::allocate(int64_t r, int64_t c) {
  rows = r;
  cols = c;
  packed.resize(static_cast<size_t>(r * row_bytes()));
}

void pack_ternary_row(const int8_t* w, int64_t cols, uint8_t* out) {
  const int64_t padded = ternary_padded_cols(cols);
  // Every byte starts as four zero weights (code 1 in each 2-bit field): 0b01010101.
  std::memset(out, 0x55, static_cast<size_t>(padded / 4));
  for (int64_t k = 0; k < cols; ++k) {
    const int64_t byte = ternary_byte_of(k);
    const int shift = ternary_shift_of(k);
    const uint8_t code = static_cast<uint8_t>(w[k] + 1);
    out[byte] = static_cast<uint8_t>((out[byte] & ~(3u << shift)) | (code << shift));
  }
}

bool unpack_ternary_row(const uint8_t* packed, int64_t cols, int8_t* w) {
  bool ok = true;
  for (int64_t k = 0; k < cols; ++k) {
    const int code = (packed[ternary_byte_of(k)] >> ternary_shift_of(k)) & 3;
    ok &= code != 3;
    w[k] = static_cast<int8_t>(code - 1);
  }
  return ok;
}

TernaryMatrix pack_ternary(const int8_t* w, int64_t rows, int64_t cols, float scale) {
  TernaryMatrix m;
  m.allocate(rows, cols);
  m.scale = scale;
  for (int64_t n = 0; n < rows; ++n) pack_ternary_row(w + n * cols, cols, m.row(n));
  return m;
}

float ternary_absmean_scale(const float* w, int64_t n) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::fabs(w[i]);
  const float mean = n > 0 ? static_cast<float>(sum / static_cast<double>(n)) : 0.0f;
  return std::max(mean, kTernaryScaleEps);
}

TernaryMatrix quantize_ternary_absmean(const float* w, int64_t rows, int64_t cols) {
  const float g = ternary_absmean_scale(w, rows * cols);
  std::vector<int8_t> codes(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < codes.size(); ++i) {
    const float r = std::nearbyint(w[i] / g);  // default rounding mode: half to even
    codes[i] = static_cast<int8_t>(std::min(1.0f, std::max(-1.0f, r)));
  }
  return pack_ternary(codes.data(), rows, cols, g);
}

void validate_ternary(const TernaryMatrix& m, const std::string& what) {
  const int64_t padded = ternary_padded_cols(m.cols);
  for (int64_t n = 0; n < m.rows; ++n) {
    const uint8_t* row = m.row(n);
    for (int64_t k = 0; k < padded; ++k) {
      const int code = (row[ternary_byte_of(k)] >> ternary_shift_of(k)) & 3;
      if (code == 3)
        throw Error(what + ": invalid ternary code 3 at row " + std::to_string(n) + ", column " + std::to_string(k),
                    "the packed tensor is corrupt; re-export the model");
      if (k >= m.cols && code != 1)
        throw Error(what + ": non-zero padding weight at row " + std::to_string(n) + ", column " + std::to_string(k),
                    "padding past column " + std::to_string(m.cols) + " must hold code 1 (weight 0)");
    }
  }
}

}  // namespace bkd

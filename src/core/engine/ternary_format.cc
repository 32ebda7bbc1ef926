#include "core/engine/ternary_format.h"

#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/util/error.h"

namespace bkd {

void TernaryMatrix::allocate(int64_t r, int64_t c) {
  rows = r;
  cols = c;
  tile_rows = 1;
  packed.resize(static_cast<size_t>(r * row_bytes()));
}

int64_t TernaryMatrix::row_major_offset(int64_t n) const {
  if (tile_rows != 1)
    throw Error("row " + std::to_string(n) + " of a ternary matrix in tiles of " + std::to_string(tile_rows) + " rows is not contiguous",
                "read it with block() or unpack_ternary_row(matrix, row, ...)");
  return n * row_bytes();
}

const uint8_t* TernaryMatrix::rows_from(int64_t n) const {
  if (n % tile_rows != 0)
    throw Error("row " + std::to_string(n) + " does not start a tile of " + std::to_string(tile_rows) + " ternary rows",
                "ranges over the stored bytes must start on a tile");
  return packed.data() + n * row_bytes();
}

void TernaryMatrix::retile(int64_t tiles) {
  if (tiles < 1 || rows % tiles != 0)
    throw Error("cannot group " + std::to_string(rows) + " ternary rows in tiles of " + std::to_string(tiles),
                "the tile size must divide the row count");
  if (tiles == tile_rows) return;
  // Each group of lcm(old, new) rows holds the same bytes in both layouts; copy a group out, then put
  // every block back at its new place.
  const int64_t group = std::lcm(tile_rows, tiles), rb = row_bytes(), blocks = blocks_per_row();
  std::vector<uint8_t> scratch(static_cast<size_t>(group * rb));
  for (int64_t g = 0; g < rows; g += group) {
    uint8_t* base = packed.data() + g * rb;
    std::memcpy(scratch.data(), base, scratch.size());
    for (int64_t r = 0; r < group; ++r)
      for (int64_t b = 0; b < blocks; ++b)
        std::memcpy(base + tiled_offset(r, b, tiles, rb), scratch.data() + tiled_offset(r, b, tile_rows, rb),
                    kTernaryBlockBytes);
  }
  tile_rows = tiles;
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

bool unpack_ternary_row(const TernaryMatrix& m, int64_t n, int8_t* w) {
  bool ok = true;
  for (int64_t b = 0; b < m.blocks_per_row(); ++b) {
    const int64_t k0 = b * kTernaryBlock;
    ok &= unpack_ternary_row(m.block(n, b), std::min(kTernaryBlock, m.cols - k0), w + k0);
  }
  return ok;
}

std::vector<uint8_t> row_major_bytes(const TernaryMatrix& m) {
  std::vector<uint8_t> out(m.bytes());
  for (int64_t n = 0; n < m.rows; ++n)
    for (int64_t b = 0; b < m.blocks_per_row(); ++b)
      std::memcpy(out.data() + n * m.row_bytes() + b * kTernaryBlockBytes, m.block(n, b), kTernaryBlockBytes);
  return out;
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
  if (m.tile_rows < 1 || m.rows % m.tile_rows != 0)
    throw Error(what + ": " + std::to_string(m.rows) + " rows in tiles of " + std::to_string(m.tile_rows),
                "the tile size must divide the row count");
  for (int64_t n = 0; n < m.rows; ++n) {
    for (int64_t b = 0; b < m.blocks_per_row(); ++b) {
      const uint8_t* block = m.block(n, b);
      for (int64_t j = 0; j < kTernaryBlock; ++j) {
        const int64_t k = b * kTernaryBlock + j;
        const int code = (block[ternary_byte_of(j)] >> ternary_shift_of(j)) & 3;
        if (code == 3)
          throw Error(what + ": invalid ternary code 3 at row " + std::to_string(n) + ", column " + std::to_string(k),
                      "the packed tensor is corrupt; re-export the model");
        if (k >= m.cols && code != 1)
          throw Error(what + ": non-zero padding weight at row " + std::to_string(n) + ", column " + std::to_string(k),
                      "padding past column " + std::to_string(m.cols) + " must hold code 1 (weight 0)");
      }
    }
  }
}

}  // namespace bkd

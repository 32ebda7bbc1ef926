#pragma once
// Packed ternary weights (BitNet b1.58): 2-bit codes plus one fp32 absmean scale per tensor.
//
// Code = w + 1: 0 -> -1, 1 -> 0, 2 -> +1; code 3 is invalid. The bytes are the same on every ISA:
// a row of `cols` weights is padded with zero weights (code 1) to a multiple of kTernaryBlock = 256;
// each block is 64 bytes, and byte j of a block holds weights j, 64+j, 128+j, 192+j in bits 0-1,
// 2-3, 4-5, 6-7. Shifting the 64 bytes right by 2*s and masking with 3 therefore yields the 64
// consecutive weights s*64 .. s*64+63, which one AVX-512 vector (or two AVX2 vectors) decodes with a
// shift and an AND, and which line up with 64 consecutive int8 activations.
#include <cstdint>
#include <string>
#include <vector>

#include "core/engine/aligned_buffer.h"

namespace bkd {

constexpr int64_t kTernaryBlock = 256;      // weights per block
constexpr int64_t kTernaryBlockBytes = 64;  // bytes per block
constexpr float kTernaryScaleEps = 1e-5f;   // floor of the absmean scale (BitNet reference code)

inline int64_t ternary_padded_cols(int64_t cols) { return (cols + kTernaryBlock - 1) / kTernaryBlock * kTernaryBlock; }
inline int64_t ternary_row_bytes(int64_t cols) { return ternary_padded_cols(cols) / 4; }

// Where weight k of a row lives: byte offset in the row and bit shift in that byte.
inline int64_t ternary_byte_of(int64_t k) { return k / kTernaryBlock * kTernaryBlockBytes + k % 64; }
inline int ternary_shift_of(int64_t k) { return static_cast<int>(2 * (k % kTernaryBlock / 64)); }

// In memory the rows may be grouped in tiles of `tile_rows` rows (a divisor of rows): within a tile
// the 64-byte blocks of its rows alternate, block b of the tile's row r at (b * tile_rows + r) * 64
// from the tile's start, so a kernel tile of those rows reads one sequential stream instead of one
// stream per row (the 4-row GEMV over a 256 MiB matrix, one core: 1.18 times a read-only pass over
// the same bytes instead of 1.51; docs/ENGINE.md). tile_rows = 1 is the row-major layout the files
// hold. The rows of a tile
// occupy the same bytes in either layout, so retile() permutes tile by tile in place.
constexpr int64_t kEngineTileRows = 4;  // the 4-row GEMV / GEMM tiles of the SIMD kernel sets

// W is (rows, cols) and computes y = W x: rows = output features, cols = input features.
struct TernaryMatrix {
  int64_t rows = 0, cols = 0;
  float scale = 1.0f;             // dequantized weight = code_value * scale
  int64_t tile_rows = 1;          // rows per interleaved tile (1: row-major)
  AlignedBuffer<uint8_t> packed;  // rows * row_bytes()

  int64_t row_bytes() const { return ternary_row_bytes(cols); }
  int64_t blocks_per_row() const { return ternary_padded_cols(cols) / kTernaryBlock; }
  // Block b of row n, in either layout; block b + 1 of the same row is block_stride() further on.
  const uint8_t* block(int64_t n, int64_t b) const { return packed.data() + block_offset(n, b); }
  uint8_t* block(int64_t n, int64_t b) { return packed.data() + block_offset(n, b); }
  int64_t block_stride() const { return tile_rows * kTernaryBlockBytes; }
  // Block 0 of row n where n starts a tile (a multiple of tile_rows), without block()'s division.
  const uint8_t* tile_start(int64_t n) const { return packed.data() + n * row_bytes(); }
  // Where block 0 of row n + r lies from tile_start(n), for n that starts a tile.
  int64_t offset_in_tiles(int64_t r) const { return tiled_offset(r, 0, tile_rows, row_bytes()); }
  // Rows n.. as stored: (rows - n) * row_bytes() bytes; throws Error unless n starts a tile.
  const uint8_t* rows_from(int64_t n) const;
  // Row n as one contiguous row: row-major layout only (throws Error for a tiled matrix).
  const uint8_t* row(int64_t n) const { return packed.data() + row_major_offset(n); }
  uint8_t* row(int64_t n) { return packed.data() + row_major_offset(n); }
  uint64_t bytes() const { return static_cast<uint64_t>(rows * row_bytes()); }
  void allocate(int64_t rows, int64_t cols);  // row-major, contents uninitialized
  // Regroups the rows into tiles of `tiles` rows (1: row-major); throws Error unless it divides rows.
  void retile(int64_t tiles);

 private:
  int64_t row_major_offset(int64_t n) const;
  int64_t block_offset(int64_t n, int64_t b) const { return tiled_offset(n, b, tile_rows, row_bytes()); }
  // Where block b of row n lies in a layout of `tiles` rows per tile.
  static int64_t tiled_offset(int64_t n, int64_t b, int64_t tiles, int64_t row_bytes) {
    const int64_t r = n % tiles;
    return (n - r) * row_bytes + (b * tiles + r) * kTernaryBlockBytes;
  }
};

// Reference codecs. pack: w[k] must be in {-1, 0, +1}; out gets row_bytes(cols) bytes, padding = 0.
void pack_ternary_row(const int8_t* w, int64_t cols, uint8_t* out);
// unpack: writes cols values in {-1, 0, +1}; returns false if a code 3 was found.
bool unpack_ternary_row(const uint8_t* packed, int64_t cols, int8_t* w);
// The same for row n of m, in either layout.
bool unpack_ternary_row(const TernaryMatrix& m, int64_t n, int8_t* w);
// m's bytes in the row-major layout of the files (bytes() of them), whatever m's layout.
std::vector<uint8_t> row_major_bytes(const TernaryMatrix& m);

TernaryMatrix pack_ternary(const int8_t* w, int64_t rows, int64_t cols, float scale);

// BitNet b1.58 absmean quantization: g = max(mean|W|, 1e-5), Wq = clamp(round(W / g), -1, 1)
// (round half to even, as torch.round).
float ternary_absmean_scale(const float* w, int64_t n);
TernaryMatrix quantize_ternary_absmean(const float* w, int64_t rows, int64_t cols);

// Throws Error naming `what`, the row and column if any code is 3 or any padding weight is not 0.
void validate_ternary(const TernaryMatrix& m, const std::string& what);

}  // namespace bkd

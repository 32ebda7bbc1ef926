// Packed ternary format: exhaustive over every byte and every code, odd shapes, validation errors,
// and the absmean quantizer against an independent formula.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/engine/kernel_tiles.h"
#include "core/engine/ternary_format.h"
#include "core/util/error.h"

namespace bkd {
namespace {

// The layout written down as in the format comment, independently of ternary_byte_of/shift_of:
// byte j of block b holds weights b*256 + s*64 + j in bits 2s..2s+1.
std::vector<uint8_t> spec_pack(const std::vector<int8_t>& w, int64_t cols) {
  const int64_t blocks = (cols + 255) / 256;
  std::vector<uint8_t> out(static_cast<size_t>(blocks * 64));
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t j = 0; j < 64; ++j) {
      int byte = 0;
      for (int s = 0; s < 4; ++s) {
        const int64_t k = b * 256 + s * 64 + j;
        const int value = k < cols ? w[k] : 0;
        byte |= (value + 1) << (2 * s);
      }
      out[b * 64 + j] = static_cast<uint8_t>(byte);
    }
  return out;
}

TEST(EnginePack, EveryByteDecodesToItsFourCodes) {
  int valid = 0;
  for (int v = 0; v < 256; ++v) {
    std::vector<uint8_t> row(64, 0x55);
    row[0] = static_cast<uint8_t>(v);
    std::vector<int8_t> w(256, 99);
    const bool ok = unpack_ternary_row(row.data(), 256, w.data());
    bool expect_ok = true;
    for (int s = 0; s < 4; ++s) {
      const int field = (v >> (2 * s)) & 3;
      expect_ok &= field != 3;
      EXPECT_EQ(w[s * 64], field - 1) << "byte " << v << " field " << s;
    }
    EXPECT_EQ(ok, expect_ok) << "byte " << v;
    for (int k = 0; k < 256; ++k)
      if (k % 64 != 0) EXPECT_EQ(w[k], 0);
    if (!expect_ok) continue;
    ++valid;
    std::vector<uint8_t> again(64);
    pack_ternary_row(w.data(), 256, again.data());
    EXPECT_EQ(again, row) << "byte " << v;
  }
  EXPECT_EQ(valid, 81);  // 3^4 valid bytes
}

TEST(EnginePack, EveryCodeAtEveryPositionOfABlock) {
  for (int64_t k = 0; k < 256; ++k)
    for (int value = -1; value <= 1; ++value) {
      std::vector<int8_t> w(256, 0);
      w[k] = static_cast<int8_t>(value);
      std::vector<uint8_t> got(64);
      pack_ternary_row(w.data(), 256, got.data());
      ASSERT_EQ(got, spec_pack(w, 256)) << "k " << k << " value " << value;
    }
}

TEST(EnginePack, OddShapesRoundTripAndPadWithZeros) {
  std::mt19937 rng(7);
  for (int64_t cols : {1, 2, 63, 64, 65, 255, 256, 257, 300, 511, 513, 1000}) {
    const int64_t rows = 3;
    std::vector<int8_t> w(static_cast<size_t>(rows * cols));
    for (auto& x : w) x = static_cast<int8_t>(static_cast<int>(rng() % 3) - 1);
    TernaryMatrix m = pack_ternary(w.data(), rows, cols, 0.5f);
    EXPECT_EQ(m.row_bytes(), (cols + 255) / 256 * 64);
    for (int64_t n = 0; n < rows; ++n) {
      std::vector<int8_t> row(w.begin() + n * cols, w.begin() + (n + 1) * cols);
      const std::vector<uint8_t> expect = spec_pack(row, cols);
      ASSERT_EQ(std::vector<uint8_t>(m.row(n), m.row(n) + m.row_bytes()), expect) << "cols " << cols;
      std::vector<int8_t> back(static_cast<size_t>(cols));
      ASSERT_TRUE(unpack_ternary_row(m.row(n), cols, back.data()));
      EXPECT_EQ(back, row);
    }
    EXPECT_NO_THROW(validate_ternary(m, "w"));
  }
}

TEST(EnginePack, ValidationNamesTheBadCodeAndPadding) {
  std::vector<int8_t> w(2 * 70, 1);
  TernaryMatrix m = pack_ternary(w.data(), 2, 70, 1.0f);
  m.row(1)[ternary_byte_of(69)] |= static_cast<uint8_t>(3 << ternary_shift_of(69));
  try {
    validate_ternary(m, "layer 3 wq");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer 3 wq: invalid ternary code 3 at row 1, column 69"), std::string::npos)
        << e.what();
    EXPECT_FALSE(e.hint().empty());
  }
  TernaryMatrix p = pack_ternary(w.data(), 2, 70, 1.0f);
  p.row(0)[ternary_byte_of(100)] = static_cast<uint8_t>(p.row(0)[ternary_byte_of(100)] ^ (1 << ternary_shift_of(100)));
  EXPECT_THROW(validate_ternary(p, "w"), Error);
}

TEST(EnginePack, AbsmeanQuantizerRoundsHalfToEvenAndClamps) {
  // mean|W| = 1 exactly, so W / g hits the .5 ties: 0.5 -> 0, -0.5 -> 0, 1.5 -> 2 -> clamp 1, 2.5 -> 1.
  const std::vector<float> w = {0.5f, -0.5f, 1.5f, -1.5f, 0.0f, 1.0f, -1.0f, 2.0f};
  EXPECT_FLOAT_EQ(ternary_absmean_scale(w.data(), 8), 1.0f);
  TernaryMatrix m = quantize_ternary_absmean(w.data(), 1, 8);
  std::vector<int8_t> codes(8);
  ASSERT_TRUE(unpack_ternary_row(m.row(0), 8, codes.data()));
  EXPECT_EQ(codes, (std::vector<int8_t>{0, 0, 1, -1, 0, 1, -1, 1}));
  EXPECT_FLOAT_EQ(m.scale, 1.0f);

  const std::vector<float> zeros(10, 0.0f);
  TernaryMatrix z = quantize_ternary_absmean(zeros.data(), 2, 5);
  EXPECT_FLOAT_EQ(z.scale, 1e-5f);
}

TEST(EnginePack, AbsmeanQuantizerMatchesTheFormulaOnRandomWeights) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  const int64_t rows = 17, cols = 300;
  std::vector<float> w(static_cast<size_t>(rows * cols));
  double sum = 0;
  for (auto& x : w) sum += std::fabs(x = nd(rng));
  const float g = static_cast<float>(sum / static_cast<double>(w.size()));
  TernaryMatrix m = quantize_ternary_absmean(w.data(), rows, cols);
  EXPECT_NEAR(m.scale, g, 1e-7f);
  std::vector<int8_t> codes(static_cast<size_t>(cols));
  for (int64_t n = 0; n < rows; ++n) {
    ASSERT_TRUE(unpack_ternary_row(m.row(n), cols, codes.data()));
    for (int64_t k = 0; k < cols; ++k) {
      const float r = w[n * cols + k] / g;
      const int expect = r > 0.5f ? 1 : r < -0.5f ? -1 : 0;  // no exact ties with random normals
      ASSERT_EQ(codes[k], expect) << n << "," << k;
    }
  }
}

// Row tiles as the format comment writes them, independently of TernaryMatrix::block: in a tile of
// T rows starting at row t, block b of row t + r is bytes [(t * blocks + b * T + r) * 64, +64).
TEST(EnginePack, RowTilesInterleaveBlocksAndRoundTripInPlace) {
  std::mt19937 rng(11);
  for (int64_t cols : {200, 256, 700, 4109})
    for (int64_t T : {2, 4, 3}) {
      const int64_t rows = 12, blocks = (cols + 255) / 256;
      std::vector<int8_t> w(static_cast<size_t>(rows * cols));
      for (auto& x : w) x = static_cast<int8_t>(static_cast<int>(rng() % 3) - 1);
      TernaryMatrix m = pack_ternary(w.data(), rows, cols, 0.5f);
      const std::vector<uint8_t> row_major(m.packed.data(), m.packed.data() + m.bytes());
      m.retile(T);
      EXPECT_EQ(m.tile_rows, T);
      EXPECT_EQ(m.block_stride(), T * 64);
      for (int64_t n = 0; n < rows; ++n)
        for (int64_t b = 0; b < blocks; ++b) {
          const int64_t t = n / T * T, r = n % T;
          const uint8_t* want = row_major.data() + n * blocks * 64 + b * 64;
          const uint8_t* at = m.packed.data() + (t * blocks + b * T + r) * 64;
          ASSERT_EQ(std::vector<uint8_t>(at, at + 64), std::vector<uint8_t>(want, want + 64)) << "cols " << cols << " T " << T << " row " << n << " block " << b;
          ASSERT_EQ(m.block(n, b), at);
        }
      EXPECT_EQ(row_major_bytes(m), row_major);
      std::vector<int8_t> back(static_cast<size_t>(cols));
      for (int64_t n = 0; n < rows; ++n) {
        ASSERT_TRUE(unpack_ternary_row(m, n, back.data()));
        ASSERT_EQ(back, std::vector<int8_t>(w.begin() + n * cols, w.begin() + (n + 1) * cols)) << "row " << n;
      }
      EXPECT_NO_THROW(validate_ternary(m, "w"));
      m.retile(T == 4 ? 2 : 4);  // tile to tile, through groups of lcm rows
      EXPECT_EQ(row_major_bytes(m), row_major);
      m.retile(1);
      EXPECT_EQ(std::vector<uint8_t>(m.packed.data(), m.packed.data() + m.bytes()), row_major);
    }
}

// The kernels' row walk (kernel_tiles.h) lands on the same bytes as block() for every tiling and
// start: by adds when the tiling divides the group and the start is a tile's, by block() otherwise.
TEST(EnginePack, RowGroupsFindTheSameRowsAsBlock) {
  std::vector<int8_t> w(24 * 300, 0);
  for (int64_t T : {1, 2, 3, 4}) {
    TernaryMatrix m = pack_ternary(w.data(), 24, 300, 1.0f);
    m.retile(T);
    for (int64_t n0 : {0, 1, 2, 3, 4, 6, 8, 13}) {
      const kernel_detail::RowGroups<4> groups(m, n0);
      for (int64_t n = n0; n < m.rows; n += 4) {
        const int nr = static_cast<int>(std::min<int64_t>(4, m.rows - n));
        const uint8_t* wr[4] = {};
        groups.rows(n, nr, wr);
        for (int r = 0; r < nr; ++r) ASSERT_EQ(wr[r], m.block(n + r, 0)) << "tiles " << T << " n0 " << n0 << " row " << n + r;
      }
    }
  }
}

TEST(EnginePack, RowTilesMustDivideTheRowsAndValidationFindsBadCodesInThem) {
  std::vector<int8_t> w(6 * 300, 1);
  TernaryMatrix m = pack_ternary(w.data(), 6, 300, 1.0f);
  EXPECT_THROW(m.retile(4), Error);
  EXPECT_THROW(m.retile(0), Error);
  EXPECT_EQ(m.tile_rows, 1);
  m.retile(3);
  EXPECT_THROW(m.row(1), Error);  // rows are not contiguous in tiles
  EXPECT_THROW(m.rows_from(1), Error);
  EXPECT_EQ(m.rows_from(3), m.block(3, 0));
  m.block(4, 1)[ternary_byte_of(44)] |= static_cast<uint8_t>(3 << ternary_shift_of(44));  // row 4, column 256 + 44
  try {
    validate_ternary(m, "w_up");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("w_up: invalid ternary code 3 at row 4, column 300"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bkd

// AMX kernel set: the AVX-512 VNNI set with its GEMM (prefill, scoring) on the tile unit.
//
// One TDPBUSD multiplies a 16 x 64 tile of unsigned bytes (A) by a 16 x 64 tile of signed bytes
// laid out in dwords (B) into 16 x 16 int32 (C): 16384 multiply-adds, where a VPDPBUSD does 64.
// The tile program:
//   A = 16 weight rows x 64 inputs, the 2-bit codes (w + 1) unpacked to one byte each: field s of
//       a 64-byte block holds inputs s * 64 .. s * 64 + 63 (ternary_format.h), so each field is one
//       A tile with no transpose (a shift and a mask per 64 codes);
//   B = 64 inputs x 16 tokens: row k holds, for each token, its codes 4k .. 4k + 3 (one dword);
//       the activations are put in this order once per region (KernelSet::prepare_gemm), not per chunk;
//   C = 16 rows x 16 tokens, four of them (tiles 4..7): each unpacked A tile serves 64 tokens.
// Edges are zero padding: missing rows get code 0 and missing tokens activation 0, and neither is
// written back. The accumulators are exact int32 (|sum| <= 2 * 128 * in_features).
//
// The same tile program also runs on an emulation of the tile registers in plain C++
// (amx_emulated_kernels()), which is how its layout and edges are tested on CPUs without AMX.
#include "core/engine/kernels.h"

#include <algorithm>
#include <cstring>

#include "core/util/error.h"

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "core/engine/kernel_tiles.h"

#define BKD_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define BKD_AMX __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,amx-tile,amx-int8")))

namespace bkd {
namespace {

constexpr int kTileRows = 16;      // rows of every tile
constexpr int kTileColBytes = 64;  // bytes per tile row
constexpr int64_t kTileBytes = kTileRows * kTileColBytes;
constexpr int kTokensPerTile = 16;              // C's columns (int32) and B's dwords per row
constexpr int kInputsPerTile = kTileColBytes;   // A's columns: one byte per input
constexpr int kFields = kTernaryBlock / kInputsPerTile;  // A tiles per 64-byte block of codes
constexpr int kTokenTiles = 4;                  // C tiles 4..7: tokens per pass over the weights = 64

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The tile configuration (palette 1): every tile used here is 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};
static_assert(sizeof(TileConfig) == 64, "LDTILECFG reads 64 bytes");

TileConfig tiles_16x64() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) {
    c.colsb[t] = kTileColBytes;
    c.rows[t] = kTileRows;
  }
  return c;
}

// The tile registers on the hardware. GCC's tile intrinsics paste their tile number into the
// instruction text, so each number must be spelled out as a literal (hence the if-constexpr chains).
#define BKD_TILE_CHAIN(OP, ...)                                                                      \
  if constexpr (T == 0) OP(0, __VA_ARGS__);                                                          \
  else if constexpr (T == 1) OP(1, __VA_ARGS__);                                                     \
  else if constexpr (T == 2) OP(2, __VA_ARGS__);                                                     \
  else if constexpr (T == 3) OP(3, __VA_ARGS__);                                                     \
  else if constexpr (T == 4) OP(4, __VA_ARGS__);                                                     \
  else if constexpr (T == 5) OP(5, __VA_ARGS__);                                                     \
  else if constexpr (T == 6) OP(6, __VA_ARGS__);                                                     \
  else OP(7, __VA_ARGS__)
struct HardwareTiles {
  BKD_AMX static void configure(const TileConfig& c) {
    asm volatile("" ::: "memory");  // LDTILECFG's statement names only the first 8 bytes as read
    _tile_loadconfig(&c);
  }
  BKD_AMX static void release() { _tile_release(); }
  template <int T>
  BKD_AMX static void zero() {
    static_assert(T >= 4 && T < 8, "only the accumulator tiles are zeroed");
    if constexpr (T == 4) _tile_zero(4);
    else if constexpr (T == 5) _tile_zero(5);
    else if constexpr (T == 6) _tile_zero(6);
    else _tile_zero(7);
  }
  // GCC's TILELOADD statement names no memory operand and no memory clobber, so without the
  // barrier the compiler may sink or drop the stores that filled the tile's bytes (the unpacked
  // codes are written just before). TILESTORED has its clobber.
  template <int T>
  BKD_AMX static void load(const void* p, int64_t stride) {
    asm volatile("" ::: "memory");
    BKD_TILE_CHAIN(_tile_loadd, p, stride);
  }
  template <int T>
  BKD_AMX static void store(void* p, int64_t stride) { BKD_TILE_CHAIN(_tile_stored, p, stride); }
  // The (C, A, B) triples token_tile_step uses.
  template <int C, int A, int B>
  BKD_AMX static void dpbusd() {
    static_assert(A == 0 && C >= 4 && C < 8 && B == 1 + (C - 4) % 3, "a tile triple token_tile_step does not use");
    if constexpr (C == 4) _tile_dpbusd(4, 0, 1);
    else if constexpr (C == 5) _tile_dpbusd(5, 0, 2);
    else if constexpr (C == 6) _tile_dpbusd(6, 0, 3);
    else _tile_dpbusd(7, 0, 1);
  }
};
#undef BKD_TILE_CHAIN

// The same operations on eight 1 KiB arrays per thread, as the Intel SDM defines them for 16 x 64
// tiles: TDPBUSD adds, for C row m and dword n, the products of A's row m bytes 4k + i (unsigned)
// with B's row k bytes 4n + i (signed) over k < 16, i < 4.
struct EmulatedTiles {
  alignas(64) static inline thread_local uint8_t reg[8][kTileBytes];
  static void configure(const TileConfig& c) {
    for (int t = 0; t < 8; ++t)
      if (c.palette != 1 || c.rows[t] != kTileRows || c.colsb[t] != kTileColBytes)
        throw Error("internal: the emulated tiles support only palette 1 with 16 x 64-byte tiles");
  }
  static void release() {}
  template <int T>
  static void zero() { std::memset(reg[T], 0, kTileBytes); }
  template <int T>
  static void load(const void* p, int64_t stride) {
    for (int r = 0; r < kTileRows; ++r) std::memcpy(reg[T] + r * kTileColBytes, static_cast<const uint8_t*>(p) + r * stride, kTileColBytes);
  }
  template <int T>
  static void store(void* p, int64_t stride) {
    for (int r = 0; r < kTileRows; ++r) std::memcpy(static_cast<uint8_t*>(p) + r * stride, reg[T] + r * kTileColBytes, kTileColBytes);
  }
  template <int C, int A, int B>
  static void dpbusd() {
    int32_t c[kTileRows][kTokensPerTile];
    std::memcpy(c, reg[C], kTileBytes);
    const uint8_t* a = reg[A];
    const int8_t* b = reinterpret_cast<const int8_t*>(reg[B]);
    for (int m = 0; m < kTileRows; ++m)
      for (int k = 0; k < kTileColBytes / 4; ++k)
        for (int n = 0; n < kTokensPerTile; ++n)
          for (int i = 0; i < 4; ++i) c[m][n] += int32_t{a[m * kTileColBytes + 4 * k + i]} * b[k * kTileColBytes + 4 * n + i];
    std::memcpy(reg[C], c, kTileBytes);
  }
};

// The B layout of x's codes (KernelSet::prepare_gemm's output): tile (g, c) for token group g
// (tokens 16g .. 16g + 15) and input chunk c (inputs 64c .. 64c + 63) at byte (g * chunks + c) *
// 1 KiB; its row k holds dword n = the codes 4k .. 4k + 3 of token 16g + n (zero past the last token).
// The buffers are 64-byte aligned (AlignedBuffer), and so is every tile in them.
int64_t acts_layout_bytes(const QuantizedActs& x) {
  return ceil_div(x.rows, kTokensPerTile) * (x.cols_padded / kInputsPerTile) * kTileBytes;
}

// One B tile: row k of the 16 x 16 dword transpose of the 16 tokens' dwords (a zero row past the
// last token). Unpack pairs of rows, then pairs of pairs, within 128-bit lanes; then a 4 x 4
// transpose of the lanes. ~100 operations per 1 KiB tile instead of 256 scalar moves (the engine
// lays out every prefill region's activations once on the calling thread: 64 tokens x 11008
// inputs took ~100 us scalar on a Zen 5 core).
BKD_AVX512 void transpose_tile(const int8_t* const* rows, int nrows, int64_t offset, int8_t* out) {
  __m512i r[kTileRows], t[kTileRows], u[kTileRows];
  for (int n = 0; n < kTileRows; ++n) r[n] = n < nrows ? _mm512_loadu_si512(rows[n] + offset) : _mm512_setzero_si512();
  for (int i = 0; i < kTileRows; i += 2) {
    t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);      // per lane [a0 b0 a1 b1]
    t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);  // per lane [a2 b2 a3 b3]
  }
  for (int i = 0; i < kTileRows; i += 4) {  // u[i + j], lane L: dword 4L + j of rows i .. i + 3
    u[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (int j = 0; j < 4; ++j) {  // output row 4L + j = lane L of u[j], u[4 + j], u[8 + j], u[12 + j]
    const __m512i s0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x44), s1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xee);
    const __m512i s2 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x44), s3 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xee);
    _mm512_store_si512(out + (0 + j) * kTileColBytes, _mm512_shuffle_i32x4(s0, s2, 0x88));
    _mm512_store_si512(out + (4 + j) * kTileColBytes, _mm512_shuffle_i32x4(s0, s2, 0xdd));
    _mm512_store_si512(out + (8 + j) * kTileColBytes, _mm512_shuffle_i32x4(s1, s3, 0x88));
    _mm512_store_si512(out + (12 + j) * kTileColBytes, _mm512_shuffle_i32x4(s1, s3, 0xdd));
  }
}

BKD_AVX512 void lay_out_acts(const QuantizedActs& x, int8_t* out) {
  const int64_t chunks = x.cols_padded / kInputsPerTile, groups = ceil_div(x.rows, kTokensPerTile);
  for (int64_t g = 0; g < groups; ++g) {
    const int nrows = static_cast<int>(std::min<int64_t>(kTokensPerTile, x.rows - g * kTokensPerTile));
    const int8_t* rows[kTokensPerTile];
    for (int n = 0; n < nrows; ++n) rows[n] = x.row(g * kTokensPerTile + n);
    for (int64_t c = 0; c < chunks; ++c) transpose_tile(rows, nrows, c * kInputsPerTile, out + (g * chunks + c) * kTileBytes);
  }
}

void prepare_gemm_amx(QuantizedActs& x) {
  if (x.rows <= 1) return;  // one token runs the GEMV
  x.gemm_layout.resize(static_cast<size_t>(acts_layout_bytes(x)));
  lay_out_acts(x, x.gemm_layout.data());
  x.gemm_layout_ready = true;
}

// The four A tiles of block `off` of rows wr[0 .. nr): field s of each row into a[s], one byte per code.
BKD_AMX inline void unpack_fields(const uint8_t* const* wr, int nr, int64_t off, uint8_t (*a)[kTileBytes]) {
  const __m512i three = _mm512_set1_epi8(3);
  for (int r = 0; r < nr; ++r) {
    const __m512i wv = _mm512_loadu_si512(wr[r] + off);
    _mm512_store_si512(a[0] + r * kTileColBytes, _mm512_and_si512(wv, three));
    _mm512_store_si512(a[1] + r * kTileColBytes, _mm512_and_si512(_mm512_srli_epi16(wv, 2), three));
    _mm512_store_si512(a[2] + r * kTileColBytes, _mm512_and_si512(_mm512_srli_epi16(wv, 4), three));
    _mm512_store_si512(a[3] + r * kTileColBytes, _mm512_and_si512(_mm512_srli_epi16(wv, 6), three));
  }
}

// C tile 4 + J += A (tile 0) x B tile J of the current input chunk. B rotates over tiles 1..3: a
// load into the tile the previous product is still reading would have to wait for that product.
template <class Tiles, int J>
BKD_AMX inline void token_tile_step(const int8_t* b) {
  constexpr int kB = 1 + J % 3;
  Tiles::template load<kB>(b, kTileColBytes);
  Tiles::template dpbusd<4 + J, 0, kB>();
}

template <class Tiles>
BKD_AMX void zero_token_tiles(int ng) {
  Tiles::template zero<4>();
  if (ng > 1) Tiles::template zero<5>();
  if (ng > 2) Tiles::template zero<6>();
  if (ng > 3) Tiles::template zero<7>();
}

template <class Tiles>
BKD_AMX void store_token_tile(int j, int32_t* out) {
  constexpr int64_t stride = kTokensPerTile * sizeof(int32_t);
  switch (j) {
    case 0: Tiles::template store<4>(out, stride); break;
    case 1: Tiles::template store<5>(out, stride); break;
    case 2: Tiles::template store<6>(out, stride); break;
    default: Tiles::template store<7>(out, stride); break;
  }
}

template <class Tiles>
BKD_AMX void gemm_tiles(const TernaryGemmArgs& args) {
  const TernaryMatrix& W = *args.w;
  const QuantizedActs& X = *args.x;
  const int64_t blocks = W.blocks_per_row(), chunks = blocks * kFields;
  if (X.cols_padded != blocks * kTernaryBlock) throw Error("internal: AMX GEMM activations and weights disagree on the input width");
  // The activations in B order: the engine prepares them once per region; a caller that did not
  // (tests, one-off calls) gets them laid out here, per call.
  const int8_t* acts = X.gemm_layout.data();
  static thread_local AlignedBuffer<int8_t> own;
  if (!X.gemm_layout_ready) {
    own.resize(static_cast<size_t>(acts_layout_bytes(X)));
    lay_out_acts(X, own.data());
    acts = own.data();
  }
  alignas(64) uint8_t a_tiles[kFields][kTileBytes];
  alignas(64) int32_t c_out[kTileRows * kTokensPerTile];
  static const TileConfig config = tiles_16x64();
  Tiles::configure(config);
  const kernel_detail::RowGroups<kTileRows> groups(W, args.n0);
  const int64_t token_groups = ceil_div(X.rows, kTokensPerTile);
  for (int64_t g0 = 0; g0 < token_groups; g0 += kTokenTiles) {
    const int ng = static_cast<int>(std::min<int64_t>(kTokenTiles, token_groups - g0));
    const int8_t* b_base = acts + g0 * chunks * kTileBytes;
    const int64_t b_group_stride = chunks * kTileBytes;
    for (int64_t n = args.n0; n < args.n1; n += kTileRows) {
      const int nr = static_cast<int>(std::min<int64_t>(kTileRows, args.n1 - n));
      const uint8_t* wr[kTileRows];
      groups.rows(n, nr, wr);
      if (nr < kTileRows) std::memset(a_tiles, 0, sizeof a_tiles);  // rows past the end: code 0
      zero_token_tiles<Tiles>(ng);
      for (int64_t b = 0; b < blocks; ++b) {
        unpack_fields(wr, nr, b * W.block_stride(), a_tiles);
        for (int s = 0; s < kFields; ++s) {
          Tiles::template load<0>(a_tiles[s], kTileColBytes);
          const int8_t* bt = b_base + (b * kFields + s) * kTileBytes;
          token_tile_step<Tiles, 0>(bt);
          if (ng > 1) token_tile_step<Tiles, 1>(bt + b_group_stride);
          if (ng > 2) token_tile_step<Tiles, 2>(bt + 2 * b_group_stride);
          if (ng > 3) token_tile_step<Tiles, 3>(bt + 3 * b_group_stride);
        }
      }
      for (int j = 0; j < ng; ++j) {
        store_token_tile<Tiles>(j, c_out);
        const int64_t t0 = (g0 + j) * kTokensPerTile;
        const int nt = static_cast<int>(std::min<int64_t>(kTokensPerTile, X.rows - t0));
        for (int r = 0; r < nr; ++r)
          for (int t = 0; t < nt; ++t)
            args.acc[(t0 + t) * args.acc_stride + n + r] = c_out[r * kTokensPerTile + t] - X.sum[t0 + t];
      }
    }
  }
  Tiles::release();
}

BKD_AMX void gemm_amx(const TernaryGemmArgs& a) { gemm_tiles<HardwareTiles>(a); }
BKD_AMX void gemm_amx_emulated(const TernaryGemmArgs& a) { gemm_tiles<EmulatedTiles>(a); }

KernelSet with_tile_gemm(const char* name, TernaryKernelFn gemm) {
  KernelSet s = *avx512_kernels();  // everything else (GEMV, head, attention, ...) as AVX-512 VNNI
  s.name = name;
  s.gemm_a8 = s.gemm_a4 = gemm;
  s.prepare_gemm = prepare_gemm_amx;
  return s;
}

}  // namespace

const KernelSet* amx_kernels() {
  if (!avx512_kernels()) return nullptr;
  static const KernelSet k = with_tile_gemm("amx", gemm_amx);
  return &k;
}

const KernelSet* amx_emulated_kernels() {
  if (!avx512_kernels()) return nullptr;
  static const KernelSet k = with_tile_gemm("amx-emulated", gemm_amx_emulated);
  return &k;
}

}  // namespace bkd

#else
namespace bkd {
const KernelSet* amx_kernels() { return nullptr; }
const KernelSet* amx_emulated_kernels() { return nullptr; }
}  // namespace bkd
#endif

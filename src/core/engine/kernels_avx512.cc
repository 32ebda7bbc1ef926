// AVX-512 VNNI kernels. vpdpbusd multiplies 64 unsigned codes (w + 1) by 64 signed activations
// and adds groups of 4 into int32 lanes: one instruction per 64 weights, no int16 saturation
// anywhere, so the same tile serves A8 and A4. Compiled with per-function target attributes.
#include "core/engine/kernels.h"

#include <cmath>

#if defined(__x86_64__) && defined(__GNUC__)
// GCC 12's own AVX-512 headers trip -Wuninitialized (_mm512_undefined_* in setzero/reduce).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "core/engine/act_quant_row.h"
#include "core/engine/kernel_prefetch.h"
#include "core/engine/kernel_tiles.h"

#define BKD_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

namespace bkd {
namespace {
using kernel_detail::kAttendPrefetchRows;
using kernel_detail::kDecodePrefetchBytes;
using kernel_detail::kWeightPrefetchBytes;
using kernel_detail::prefetch_attend_row;
using kernel_detail::TileFn;

// acc += the 4-byte groups of u8 x s8 products. GCC 12 compiles the intrinsic
// (_mm512_dpbusd_epi32) in these tiles into a register copy per call and dead stores to the stack
// (the 4-row GEMV tile: 16 VPDPBUSD with ~30 copies and 5 stores per block); the read-modify-write
// operand of an asm statement lets it keep each accumulator in place. One Zen 5 core, matrix in L2:
// 68 -> 105 GB/s for the 4-row GEMV tile.
//
// The short loops over a tile's accumulators (zeroing, combining, reducing) are unrolled by pragma:
// left to GCC 12, they kept the accumulator array in memory around the main loop: 16 zeroing
// stores on entry, 16 stores and 16 reloads on exit of every 4-row GEMV call (one call per 4 KiB
// of 7B weights; read from the disassembly, where the tiles now touch the stack no more). The
// cache-resident 7B benchmarks did not move with it; docs/ENGINE.md has the paired figures.
BKD_AVX512 inline __m512i dpbusd(__m512i acc, __m512i u8, __m512i s8) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "vm"(s8));
  return acc;
}

BKD_AVX512 inline __m512i pair_sums(__m512i a, __m512i b) {  // [a b a b] pair sums per 128-bit lane
  return _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
}
BKD_AVX512 inline __m512i quad_sums(__m512i ab, __m512i cd) {  // [a b c d] partial sums per 128-bit lane
  return _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
}
BKD_AVX512 inline __m512i lane_sums(__m512i v0, __m512i v1) {  // [v0 lanes 0+1, 2+3, v1 lanes 0+1, 2+3]
  return _mm512_add_epi32(_mm512_shuffle_i32x4(v0, v1, 0x88), _mm512_shuffle_i32x4(v0, v1, 0xdd));
}
// Lane i of the result = the sum of the lanes of v[i], for 16 vectors.
BKD_AVX512 inline __m512i sum16(const __m512i* v) {
  __m512i q[4];
#pragma GCC unroll 16
  for (int g = 0; g < 4; ++g) q[g] = quad_sums(pair_sums(v[4 * g], v[4 * g + 1]), pair_sums(v[4 * g + 2], v[4 * g + 3]));
  return lane_sums(lane_sums(q[0], q[1]), lane_sums(q[2], q[3]));
}

template <int NR, int MT>
BKD_AVX512 void tile_vnni(const uint8_t* const* w, int64_t w_stride, const int8_t* const* a, int64_t blocks, int32_t* raw) {
  __m512i acc[NR][MT];
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
    for (int t = 0; t < MT; ++t) acc[r][t] = _mm512_setzero_si512();
  const __m512i mask = _mm512_set1_epi8(3);
  for (int64_t b = 0; b < blocks; ++b) {
    __m512i wv[NR];
    for (int r = 0; r < NR; ++r) {
      const uint8_t* p = w[r] + b * w_stride;
      wv[r] = _mm512_loadu_si512(p);
      _mm_prefetch(reinterpret_cast<const char*>(p) + kWeightPrefetchBytes, _MM_HINT_T1);
    }
    for (int s = 0; s < 4; ++s) {
      __m512i code[NR];
      for (int r = 0; r < NR; ++r) code[r] = _mm512_and_si512(wv[r], mask);
      for (int t = 0; t < MT; ++t) {
        const __m512i x = _mm512_loadu_si512(a[t] + b * kTernaryBlock + s * 64);
        for (int r = 0; r < NR; ++r) acc[r][t] = dpbusd(acc[r][t], code[r], x);
      }
      for (int r = 0; r < NR; ++r) wv[r] = _mm512_srli_epi16(wv[r], 2);
    }
  }
  if constexpr (NR * MT == 16) {  // the full tile: one transpose-add tree for its 16 sums
    _mm512_storeu_si512(raw, sum16(&acc[0][0]));
  } else {
#pragma GCC unroll 16
    for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
      for (int t = 0; t < MT; ++t) raw[r * MT + t] = _mm512_reduce_add_epi32(acc[r][t]);
  }
}

// Decode (one token) is bound by streaming the weights, so the GEMV tile spends as few instructions
// per weight byte as it can (on a shared machine CPU time, not DRAM, is often what runs out): it
// masks the 2-bit fields in place (wv & 3 << 2s = code * 4^s, still a u8 <= 128) into one
// accumulator per field instead of shifting, shifts the exact multiples of 4^s out per lane at the
// end, and reduces the tile's rows together (one transpose-add tree instead of a full horizontal
// sum per field and row). Lane bound: in_features * 256 < 2^31 (8M inputs).
//
// In the engine's 4-row tiles (ternary_format.h) the blocks of a tile's rows alternate and tiles
// follow each other, so the weights are one address stream; each load prefetches the line
// kWeightPrefetchBytes further on into L2 (kernel_prefetch.h says what that buys).
template <int NR>
BKD_AVX512 inline void reduce_rows(const __m512i (&acc)[NR][4], int32_t* raw) {
  __m512i t[4];
#pragma GCC unroll 16
  for (int r = 0; r < 4; ++r) {
    if (r < NR) {
      t[r] = _mm512_add_epi32(_mm512_add_epi32(acc[r][0], _mm512_srai_epi32(acc[r][1], 2)),
                              _mm512_add_epi32(_mm512_srai_epi32(acc[r][2], 4), _mm512_srai_epi32(acc[r][3], 6)));
    } else {
      t[r] = _mm512_setzero_si512();
    }
  }
  // [r0 r1 r0 r1 ...] pair sums, then [r0 r1 r2 r3] per 128-bit lane, then add the four lanes.
  const __m512i t01 = _mm512_add_epi32(_mm512_unpacklo_epi32(t[0], t[1]), _mm512_unpackhi_epi32(t[0], t[1]));
  const __m512i t23 = _mm512_add_epi32(_mm512_unpacklo_epi32(t[2], t[3]), _mm512_unpackhi_epi32(t[2], t[3]));
  const __m512i q = _mm512_add_epi32(_mm512_unpacklo_epi64(t01, t23), _mm512_unpackhi_epi64(t01, t23));
  const __m256i h = _mm256_add_epi32(_mm512_castsi512_si256(q), _mm512_extracti64x4_epi64(q, 1));
  const __m128i v = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
  alignas(16) int32_t out[4];
  _mm_store_si128(reinterpret_cast<__m128i*>(out), v);
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r) raw[r] = out[r];
}

// The GEMV tile over NR rows of any layout: block b of row r at w[r] + b * w_stride.
template <int NR>
BKD_AVX512 inline void gemv_rows(const uint8_t* const* w, int64_t w_stride, const int8_t* x, int64_t blocks, int32_t* raw) {
  __m512i acc[NR][4];
#pragma GCC unroll 16
  for (int r = 0; r < NR; ++r)
#pragma GCC unroll 16
    for (int s = 0; s < 4; ++s) acc[r][s] = _mm512_setzero_si512();
  const __m512i mask[4] = {_mm512_set1_epi8(0x03), _mm512_set1_epi8(0x0c), _mm512_set1_epi8(0x30),
                           _mm512_set1_epi8(static_cast<char>(0xc0))};
  for (int64_t b = 0; b < blocks; ++b) {
    __m512i wv[NR];
    for (int r = 0; r < NR; ++r) {
      const uint8_t* p = w[r] + b * w_stride;
      wv[r] = _mm512_loadu_si512(p);
      _mm_prefetch(reinterpret_cast<const char*>(p) + kWeightPrefetchBytes, _MM_HINT_T1);
    }
    for (int s = 0; s < 4; ++s) {
      const __m512i xv = _mm512_loadu_si512(x + b * kTernaryBlock + s * 64);
      for (int r = 0; r < NR; ++r) acc[r][s] = dpbusd(acc[r][s], _mm512_and_si512(wv[r], mask[s]), xv);
    }
  }
  reduce_rows<NR>(acc, raw);
}

// One of the engine's 4-row tiles (its rows' blocks alternate: block b of row r at w + 64 (4b + r)),
// walked as one stream by one pointer: the GEMV of long rows, and with kReadOnly the dry-run's
// bandwidth probe, the same loads and prefetches with one add per line instead of the arithmetic
// (acc[r][0] then holds a checksum). Two things let the GEMV stream as fast as a plain read loop
// (gemv_mix_bench; docs/ENGINE.md has the figures):
// - Block b + 1's four lines are loaded before block b's 32 operations are issued: 1.33 times a
//   plain read of the same bytes with the loads after them, 1.05-1.07 ahead of them. (Our reading,
//   with no hardware counters on the VMs to confirm it: issued first, operations that all wait on
//   block b's loads fill the scheduler, and the next loads go out only as they drain.)
// - Each line is prefetched kDecodePrefetchBytes ahead into L1 (T0), not L2: 0.84-0.89 with both.
template <bool kReadOnly>
BKD_AVX512 inline void walk_tile4(const uint8_t* w, const int8_t* x, int64_t blocks, __m512i (&acc)[kEngineTileRows][4]) {
  constexpr int NR = kEngineTileRows;
  constexpr int64_t kBlock = NR * kTernaryBlockBytes;  // block b of the tile's 4 rows
  const __m512i mask[4] = {_mm512_set1_epi8(0x03), _mm512_set1_epi8(0x0c), _mm512_set1_epi8(0x30),
                           _mm512_set1_epi8(static_cast<char>(0xc0))};
  __m512i next[NR];
  for (int r = 0; r < NR; ++r) {
    next[r] = _mm512_loadu_si512(w + r * kTernaryBlockBytes);
    _mm_prefetch(reinterpret_cast<const char*>(w) + r * kTernaryBlockBytes + kDecodePrefetchBytes, _MM_HINT_T0);
  }
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* p = w + b * kBlock;
    __m512i wv[NR];
    for (int r = 0; r < NR; ++r) wv[r] = next[r];
    if (b + 1 < blocks)
      for (int r = 0; r < NR; ++r) {
        next[r] = _mm512_loadu_si512(p + kBlock + r * kTernaryBlockBytes);
        _mm_prefetch(reinterpret_cast<const char*>(p) + kBlock + r * kTernaryBlockBytes + kDecodePrefetchBytes, _MM_HINT_T0);
      }
    if constexpr (kReadOnly) {
      for (int r = 0; r < NR; ++r) acc[r][0] = _mm512_add_epi64(acc[r][0], wv[r]);
    } else {
      for (int s = 0; s < 4; ++s) {
        const __m512i xv = _mm512_loadu_si512(x + b * kTernaryBlock + s * 64);
        for (int r = 0; r < NR; ++r) acc[r][s] = dpbusd(acc[r][s], _mm512_and_si512(wv[r], mask[s]), xv);
      }
    }
  }
}

BKD_AVX512 inline void gemv_tile4(const uint8_t* w, const int8_t* x, int64_t blocks, int32_t* raw) {
  __m512i acc[kEngineTileRows][4];
#pragma GCC unroll 16
  for (int r = 0; r < kEngineTileRows; ++r)
#pragma GCC unroll 16
    for (int s = 0; s < 4; ++s) acc[r][s] = _mm512_setzero_si512();
  walk_tile4<false>(w, x, blocks, acc);
  reduce_rows<kEngineTileRows>(acc, raw);
}

template <int NR>
BKD_AVX512 void tile_vnni_gemv(const uint8_t* const* w, int64_t w_stride, const int8_t* const* a, int64_t blocks, int32_t* raw) {
  gemv_rows<NR>(w, w_stride, a[0], blocks, raw);
}

// GEMV: 4 rows share each activation load. GEMM: 4 rows x 4 tokens (16 accumulators).
constexpr TileFn kGemvTiles[4][1] = {{tile_vnni_gemv<1>}, {tile_vnni_gemv<2>}, {tile_vnni_gemv<3>}, {tile_vnni_gemv<4>}};
constexpr TileFn kGemmTiles[4][4] = {
    {tile_vnni<1, 1>, tile_vnni<1, 2>, tile_vnni<1, 3>, tile_vnni<1, 4>},
    {tile_vnni<2, 1>, tile_vnni<2, 2>, tile_vnni<2, 3>, tile_vnni<2, 4>},
    {tile_vnni<3, 1>, tile_vnni<3, 2>, tile_vnni<3, 3>, tile_vnni<3, 4>},
    {tile_vnni<4, 1>, tile_vnni<4, 2>, tile_vnni<4, 3>, tile_vnni<4, 4>}};

// Short rows (up to 4 blocks: a student's 256- to 1024-wide inputs): 16 rows at a time with one
// accumulator each, the fields shifted down to plain codes, so nothing is left to combine per row,
// and one transpose-add tree turns the 16 accumulators into 16 sums in one vector. Per row and block:
// a load, 3 shifts, 4 ANDs, 4 VPDPBUSD; the 4-row tile instead spends ~20 operations per row on its
// field combine and horizontal sums, which only long rows amortize. One Zen 4 core, cache-resident:
// 1.9 instead of 5.3 ns per 256-wide row, 3.9 instead of 6.7 per 704-wide one. Long rows stay on the
// 4-row tile: one tile is one stream from memory (row-major, before the tiles: 4 interleaved streams
// at 1.65 times a plain read against 2.14 for 16).
constexpr int64_t kShortRowBlocks = 4;

// T: the matrix's rows per tile (1 or kEngineTileRows), so that each row's address is a constant
// offset from one of at most four tile pointers; n must start a tile.
template <int T>
BKD_AVX512 void gemv16_short_rows(const TernaryMatrix& W, int64_t n, const int8_t* x, int32_t sum, int32_t* out) {
  const int64_t blocks = W.blocks_per_row(), tile_bytes = T * W.row_bytes();
  const uint8_t* base = W.tile_start(n);
  __m512i acc[16];
#pragma GCC unroll 16
  for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_si512();
  const __m512i mask = _mm512_set1_epi8(3);
  for (int64_t b = 0; b < blocks; ++b) {
    __m512i xs[4];
    for (int f = 0; f < 4; ++f) xs[f] = _mm512_loadu_si512(x + b * kTernaryBlock + f * 64);
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) {
      const uint8_t* p = base + (r / T) * tile_bytes + (b * T + r % T) * kTernaryBlockBytes;
      const __m512i wv = _mm512_loadu_si512(p);
      _mm_prefetch(reinterpret_cast<const char*>(p) + kWeightPrefetchBytes, _MM_HINT_T1);
      acc[r] = dpbusd(acc[r], _mm512_and_si512(wv, mask), xs[0]);
      acc[r] = dpbusd(acc[r], _mm512_and_si512(_mm512_srli_epi16(wv, 2), mask), xs[1]);
      acc[r] = dpbusd(acc[r], _mm512_and_si512(_mm512_srli_epi16(wv, 4), mask), xs[2]);
      acc[r] = dpbusd(acc[r], _mm512_and_si512(_mm512_srli_epi16(wv, 6), mask), xs[3]);
    }
  }
  _mm512_storeu_si512(out, _mm512_sub_epi32(sum16(acc), _mm512_set1_epi32(sum)));
}

// GEMV driver: one token, so no tile-shape table; the 4-row tile is inlined and writes straight
// into the accumulators (a student's 256-wide rows are one block each, where a call per tile and a
// copy through a scratch tile cost as much as the arithmetic).
BKD_AVX512 void gemv_vnni(const TernaryGemmArgs& a) {
  const TernaryMatrix& W = *a.w;
  const int8_t* x = a.x->row(0);
  const int32_t sum = a.x->sum[0];
  const int64_t blocks = W.blocks_per_row();
  int32_t raw[4];
  int64_t n = a.n0;
  if (blocks <= kShortRowBlocks && n % W.tile_rows == 0) {
    if (W.tile_rows == 1)
      for (; n + 16 <= a.n1; n += 16) gemv16_short_rows<1>(W, n, x, sum, a.acc + n);
    else if (W.tile_rows == kEngineTileRows)
      for (; n + 16 <= a.n1; n += 16) gemv16_short_rows<kEngineTileRows>(W, n, x, sum, a.acc + n);
  }
  if (W.tile_rows == kEngineTileRows && n % kEngineTileRows == 0)  // the engine's layout: one stream
    for (; n + 4 <= a.n1; n += 4) {
      gemv_tile4(W.tile_start(n), x, blocks, raw);
      for (int r = 0; r < 4; ++r) a.acc[n + r] = raw[r] - sum;
    }
  const kernel_detail::RowGroups<4> groups(W, n);
  const uint8_t* wr[4];
  for (; n + 4 <= a.n1; n += 4) {
    groups.rows(n, 4, wr);
    tile_vnni_gemv<4>(wr, W.block_stride(), &x, blocks, raw);
    for (int r = 0; r < 4; ++r) a.acc[n + r] = raw[r] - sum;
  }
  if (n < a.n1) {
    const int nr = static_cast<int>(a.n1 - n);
    groups.rows(n, nr, wr);
    for (int r = nr; r < 4; ++r) wr[r] = wr[0];  // unused rows of the smaller tiles
    kGemvTiles[nr - 1][0](wr, W.block_stride(), &x, blocks, raw);
    for (int r = 0; r < nr; ++r) a.acc[n + r] = raw[r] - sum;
  }
}
void gemm_vnni(const TernaryGemmArgs& a) { kernel_detail::run_tiles(kGemmTiles, a); }

// Loads 16 table elements of row p starting at k as floats; `lanes` < 16 masks the tail.
template <TableFormat F>
BKD_AVX512 inline __m512 load16(const uint8_t* p, int64_t k, __mmask16 m) {
  if constexpr (F == TableFormat::F32) {
    return _mm512_maskz_loadu_ps(m, reinterpret_cast<const float*>(p) + k);
  } else if constexpr (F == TableFormat::BF16) {
    const __m256i h = _mm256_maskz_loadu_epi16(m, reinterpret_cast<const uint16_t*>(p) + k);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    const __m128i q = _mm_maskz_loadu_epi8(m, reinterpret_cast<const int8_t*>(p) + k);
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
  }
}

// The same without a mask (whole 16-element groups): plain loads fold into the conversions.
template <TableFormat F>
BKD_AVX512 inline __m512 load16_full(const uint8_t* p, int64_t k) {
  if constexpr (F == TableFormat::F32) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(p) + k);
  } else if constexpr (F == TableFormat::BF16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(reinterpret_cast<const uint16_t*>(p) + k));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const int8_t*>(p) + k));
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
  }
}

// Sums of 4 vectors, one per lane of the result: a transpose-add tree (three levels of adds instead of
// four full horizontal reductions).
BKD_AVX512 inline __m128 reduce4_ps(const __m512 (&acc)[4]) {
  const __m512 t01 = _mm512_add_ps(_mm512_unpacklo_ps(acc[0], acc[1]), _mm512_unpackhi_ps(acc[0], acc[1]));
  const __m512 t23 = _mm512_add_ps(_mm512_unpacklo_ps(acc[2], acc[3]), _mm512_unpackhi_ps(acc[2], acc[3]));
  const __m512d lo = _mm512_unpacklo_pd(_mm512_castps_pd(t01), _mm512_castps_pd(t23));
  const __m512d hi = _mm512_unpackhi_pd(_mm512_castps_pd(t01), _mm512_castps_pd(t23));
  const __m512 q = _mm512_add_ps(_mm512_castpd_ps(lo), _mm512_castpd_ps(hi));  // [r0 r1 r2 r3] per 128-bit lane
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(q), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(q), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// 4 table rows x MT tokens: each table vector loaded (and converted) once serves MT tokens, so a
// prefill with every position's logits does 4 + MT loads per 4 MT multiply-adds instead of 5 per 4.
// Whole groups of 16 run unmasked, the tail masked (the same products in the same order either way);
// the int8 row scale is applied once per dot product. With `prefetch`, each table line is
// prefetched ahead (the 4 rows are contiguous and groups follow each other); for one token, into
// L1 with each group's loads issued before the previous group's arithmetic, as the GEMV's
// walk_tile4 does, for the same reason (kernel_prefetch.h).
template <TableFormat F, int MT>
BKD_AVX512 void head_tile(const EmbeddingTable& t, const uint8_t* const* rows, const float* const* x, bool prefetch,
                          float (*sums)[4]) {
  const int64_t K = t.cols, K16 = K / 16 * 16;
  // Elements per cache line, a compile-time constant: read from the table at run time, the
  // k % step below compiled to a 64-bit division per 16 elements, which held the int8 head at
  // ~37 GB/s in L2 (one Zen 5 core; 57-59 GB/s without it).
  constexpr int64_t kElementBytes = table_element_bytes(F), kStep = 64 / kElementBytes;
  __m512 acc[MT][4];
#pragma GCC unroll 16
  for (int m = 0; m < MT; ++m)
#pragma GCC unroll 16
    for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_setzero_ps();
  // One token (decode): the next group's loads go out first and the prefetch is into L1, as in the
  // GEMV. Several tokens (a prefill's every-position logits): loads with their group, prefetch into
  // L2; the loads ahead cost the cpu-preset student's 128-token prefill ~10% on one thread, with
  // its rows in cache after the first token's pass.
  constexpr bool kAhead = MT == 1;
  __m512 next[4];
  if (kAhead && K16 > 0)
    for (int r = 0; r < 4; ++r) next[r] = load16_full<F>(rows[r], 0);
  for (int64_t k = 0; k < K16; k += 16) {
    if (prefetch && k % kStep == 0)
      for (int r = 0; r < 4; ++r) {
        const char* line = reinterpret_cast<const char*>(rows[r] + k * kElementBytes);
        if (kAhead) _mm_prefetch(line + kDecodePrefetchBytes, _MM_HINT_T0);
        else _mm_prefetch(line + kWeightPrefetchBytes, _MM_HINT_T1);
      }
    __m512 w[4];
    for (int r = 0; r < 4; ++r) w[r] = kAhead ? next[r] : load16_full<F>(rows[r], k);
    if (kAhead && k + 16 < K16)
      for (int r = 0; r < 4; ++r) next[r] = load16_full<F>(rows[r], k + 16);
    for (int m = 0; m < MT; ++m) {
      const __m512 xv = _mm512_loadu_ps(x[m] + k);
      for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_fmadd_ps(w[r], xv, acc[m][r]);
    }
  }
  if (K16 < K) {
    const __mmask16 mk = __mmask16((1u << (K - K16)) - 1);
    __m512 w[4];
    for (int r = 0; r < 4; ++r) w[r] = load16<F>(rows[r], K16, mk);
    for (int m = 0; m < MT; ++m) {
      const __m512 xv = _mm512_maskz_loadu_ps(mk, x[m] + K16);
      for (int r = 0; r < 4; ++r) acc[m][r] = _mm512_fmadd_ps(w[r], xv, acc[m][r]);
    }
  }
#pragma GCC unroll 16
  for (int m = 0; m < MT; ++m) _mm_storeu_ps(sums[m], reduce4_ps(acc[m]));
}

template <TableFormat F>
BKD_AVX512 void head_avx512_t(const HeadArgs& a) {
  const EmbeddingTable& t = *a.table;
  constexpr int MT = 4;
  for (int64_t n = a.n0; n < a.n1; n += 4) {
    const int nr = static_cast<int>(std::min<int64_t>(4, a.n1 - n));
    const uint8_t* rows[4];
    for (int r = 0; r < 4; ++r) rows[r] = t.row_data(n + std::min(r, nr - 1));
    for (int64_t m = 0; m < a.rows; m += MT) {
      const int mt = static_cast<int>(std::min<int64_t>(MT, a.rows - m));
      const float* x[MT];
      for (int i = 0; i < mt; ++i) x[i] = a.x + (m + i) * a.x_stride;
      float sums[MT][4];
      const bool prefetch = m == 0;
      switch (mt) {
        case 1: head_tile<F, 1>(t, rows, x, prefetch, sums); break;
        case 2: head_tile<F, 2>(t, rows, x, prefetch, sums); break;
        case 3: head_tile<F, 3>(t, rows, x, prefetch, sums); break;
        default: head_tile<F, 4>(t, rows, x, prefetch, sums); break;
      }
      for (int i = 0; i < mt; ++i)
        for (int r = 0; r < nr; ++r) {
          float v = sums[i][r];
          if constexpr (F == TableFormat::I8) v *= t.row_scale[n + r];
          a.out[(m + i) * a.out_stride + n + r] = v;
        }
    }
  }
}

void head_avx512(const HeadArgs& a) {
  switch (a.table->format) {
    case TableFormat::F32: return head_avx512_t<TableFormat::F32>(a);
    case TableFormat::BF16: return head_avx512_t<TableFormat::BF16>(a);
    case TableFormat::I8: return head_avx512_t<TableFormat::I8>(a);
  }
}

// e^x for 16 floats: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two for an exact n ln2), e^r by
// the Cephes expf polynomial (relative error below 1 ulp on that interval), times 2^n by VSCALEFPS.
// x is clamped to [-87.34, 88.72] (results from 1.2e-38 to 3.4e38; below, the true value is under the
// smallest normal float and adds nothing to a softmax sum or a SiLU); a NaN stays NaN (MAXPS and MINPS
// return their second operand when either is NaN).
BKD_AVX512 inline __m512 exp512(__m512 x) {
  x = _mm512_min_ps(_mm512_set1_ps(88.72283f), _mm512_max_ps(_mm512_set1_ps(-87.33654f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

BKD_AVX512 void silu_gate_avx512(float* g, const float* u, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    const __m512 x = _mm512_maskz_loadu_ps(m, g + i);
    const __m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
    const __m512 y = _mm512_mul_ps(_mm512_div_ps(x, _mm512_add_ps(one, e)), _mm512_maskz_loadu_ps(m, u + i));
    _mm512_mask_storeu_ps(g + i, m, y);
  }
}

BKD_AVX512 void relu2_gate_avx512(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = n - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - i)) - 1);
    const __m512 r = _mm512_max_ps(_mm512_setzero_ps(), _mm512_maskz_loadu_ps(m, g + i));  // NaN: the second operand
    _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(_mm512_mul_ps(r, r), _mm512_maskz_loadu_ps(m, u + i)));
  }
}

// round(clamp(x * scale, lo, hi)) of act_quant_row.h, 16 floats at a time, bit for bit: the same
// multiply, clamp and magic-number rounding in the same float operations (MAXPS/MINPS with their
// operands in the order that gives std::max/std::min's answer for a NaN: the low code). The codes
// into q, their sum returned.
BKD_AVX512 int32_t quantize_codes_avx512(const float* x, int64_t cols, float scale, float lo_code, float hi_code, int8_t* q) {
  const __m512 vs = _mm512_set1_ps(scale), lo = _mm512_set1_ps(lo_code), hi = _mm512_set1_ps(hi_code);
  const __m512 magic = _mm512_set1_ps(12582912.0f);
  __m512i sum = _mm512_setzero_si512();
  for (int64_t k = 0; k < cols; k += 16) {
    const __mmask16 m = cols - k >= 16 ? __mmask16(0xffff) : __mmask16((1u << (cols - k)) - 1);
    const __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + k), vs), lo), hi);
    const __m512i c = _mm512_cvtps_epi32(_mm512_sub_ps(_mm512_add_ps(v, magic), magic));
    _mm_mask_storeu_epi8(q + k, m, _mm512_cvtsepi32_epi8(c));
    sum = _mm512_add_epi32(sum, _mm512_maskz_mov_epi32(m, c));
  }
  return _mm512_reduce_add_epi32(sum);
}

// The A8 quantizer of act_quant_row.h, bit for bit (a NaN is ignored in the absmax).
BKD_AVX512 int32_t quantize_a8_avx512(const float* x, int64_t cols, int8_t* q, float* mult) {
  __m512 amax = _mm512_setzero_ps();
  for (int64_t k = 0; k < cols; k += 16) {
    const __mmask16 m = cols - k >= 16 ? __mmask16(0xffff) : __mmask16((1u << (cols - k)) - 1);
    amax = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(m, x + k)), amax);
  }
  const float s = (1.0f / std::max(_mm512_reduce_max_ps(amax), kActEps)) * 127.0f;
  *mult = 1.0f / s;
  return quantize_codes_avx512(x, cols, s, -128.0f, 127.0f, q);
}

// The A4 quantizer of act_quant_row.h, bit for bit: the mean's eight partial double sums are the
// eight lanes of one vector (element k into lane k % 8; masked-off lanes add +0.0, which leaves a
// sum of absolute values as it is), added in lane order.
BKD_AVX512 int32_t quantize_a4_avx512(const float* x, int64_t cols, int8_t* q, float* mult) {
  __m512d part = _mm512_setzero_pd();
  for (int64_t k = 0; k < cols; k += 8) {
    const __mmask8 m = cols - k >= 8 ? __mmask8(0xff) : __mmask8((1u << (cols - k)) - 1);
    part = _mm512_add_pd(part, _mm512_abs_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, x + k))));
  }
  alignas(64) double lanes[kA4MeanPartials];
  _mm512_store_pd(lanes, part);
  double total = 0.0;
  for (int j = 0; j < kA4MeanPartials; ++j) total += lanes[j];
  const float b = static_cast<float>(total / static_cast<double>(cols));
  *mult = a4_code_value(b);
  return quantize_codes_avx512(x, cols, a4_pre_scale(b), -8.0f, 7.0f, q);
}

// Lane i of the result = the sum of the lanes of v[i], for 16 float vectors: sum16's tree in floats.
BKD_AVX512 inline __m512 pair_sums_ps(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
}
BKD_AVX512 inline __m512 quad_sums_ps(__m512 ab, __m512 cd) {
  return _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))),
                       _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(ab), _mm512_castps_pd(cd))));
}
BKD_AVX512 inline __m512 lane_sums_ps(__m512 v0, __m512 v1) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x88), _mm512_shuffle_f32x4(v0, v1, 0xdd));
}
BKD_AVX512 inline __m512 sum16_ps(const __m512* v) {
  __m512 q[4];
#pragma GCC unroll 16
  for (int g = 0; g < 4; ++g)
    q[g] = quad_sums_ps(pair_sums_ps(v[4 * g], v[4 * g + 1]), pair_sums_ps(v[4 * g + 2], v[4 * g + 3]));
  return lane_sums_ps(lane_sums_ps(q[0], q[1]), lane_sums_ps(q[2], q[3]));
}

// Scores 16 positions at a time: 16 dimensions of the query against the same 16 dimensions of
// each of the 16 key rows per step, one accumulator per position, and one transpose-add tree turns
// the 16 accumulators into 16 scores; exponentials 16 at a time (exp512); the weighted sum of
// values position by position (below). Masked tails throughout.
// Both loops prefetch the row kAttendPrefetchRows ahead, on into the next head (kernel_prefetch.h).
BKD_AVX512 void attend_avx512(const AttendArgs& a) {
  const int64_t n = a.n, hd = a.head_dim;
  float* scores = a.scores;
  const __m512 scale = _mm512_set1_ps(a.scale);
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int64_t j = 0; j < n; j += 16) {
    const int64_t count = std::min<int64_t>(16, n - j);
    const __mmask16 m = count == 16 ? __mmask16(0xffff) : __mmask16((1u << count) - 1);
    // Rows past the last position read the last one again (their scores are masked off).
    const float* k[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) k[r] = a.k + (j + std::min<int64_t>(r, count - 1)) * a.k_stride;
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) prefetch_attend_row(a, j + kAttendPrefetchRows + r);
    __m512 acc[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) acc[r] = _mm512_setzero_ps();
    // Dimension-major: the 16 rows' lines are in flight together (cache misses overlap).
    for (int64_t i = 0; i < hd; i += 16) {
      const __mmask16 mi = hd - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (hd - i)) - 1);
      const __m512 qv = _mm512_maskz_loadu_ps(mi, a.q + i);
#pragma GCC unroll 16
      for (int r = 0; r < 16; ++r) acc[r] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(mi, k[r] + i), acc[r]);
    }
    const __m512 s = _mm512_mul_ps(sum16_ps(acc), scale);
    _mm512_mask_storeu_ps(scores + j, m, s);
    vmax = _mm512_mask_max_ps(vmax, m, vmax, s);
  }
  const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? __mmask16(0xffff) : __mmask16((1u << (n - j)) - 1);
    const __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, scores + j), mx)));
    _mm512_mask_storeu_ps(scores + j, m, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  const float inv = 1.0f / _mm512_reduce_add_ps(vsum);
  // Position-major over up to 128 dimensions at a time: each value row is read once and in order,
  // into 8 independent accumulators (a dimension-major loop read the cache one line per position
  // per 16 dimensions and chained every multiply-add on one register). Each output is still summed
  // over positions in order.
  for (int64_t i0 = 0; i0 < hd; i0 += 128) {
    __mmask16 mc[8];
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) {
      const int64_t left = hd - i0 - 16 * c;
      mc[c] = left >= 16 ? __mmask16(0xffff) : left > 0 ? __mmask16((1u << left) - 1) : __mmask16(0);
    }
    __m512 acc[8];
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) acc[c] = _mm512_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const __m512 w = _mm512_set1_ps(scores[j] * inv);
      const float* v = a.v + j * a.v_stride + i0;
      if (i0 == 0) prefetch_attend_row(a, n + j + kAttendPrefetchRows);
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c)
        if (mc[c]) acc[c] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(mc[c], v + 16 * c), acc[c]);
    }
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c)
      if (mc[c]) _mm512_mask_storeu_ps(a.out + i0 + 16 * c, mc[c], acc[c]);
  }
}

BKD_AVX512 uint64_t read_avx512(const uint8_t* p, int64_t n) {
  __m512i s0 = _mm512_setzero_si512(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 256 <= n; i += 256) {
    s0 = _mm512_add_epi64(s0, _mm512_loadu_si512(p + i));
    s1 = _mm512_add_epi64(s1, _mm512_loadu_si512(p + i + 64));
    s2 = _mm512_add_epi64(s2, _mm512_loadu_si512(p + i + 128));
    s3 = _mm512_add_epi64(s3, _mm512_loadu_si512(p + i + 192));
  }
  s0 = _mm512_add_epi64(_mm512_add_epi64(s0, s1), _mm512_add_epi64(s2, s3));
  uint64_t s = static_cast<uint64_t>(_mm512_reduce_add_epi64(s0));
  for (; i < n; ++i) s += p[i];
  return s;
}


// The probe for the projections: rows n0 .. n1 of w read the way gemv_vnni walks them (whole 4-row
// tiles by walk_tile4; anything else, as plain bytes).
BKD_AVX512 uint64_t read_ternary_avx512(const TernaryMatrix& w, int64_t n0, int64_t n1) {
  uint64_t sum = 0;
  int64_t n = n0;
  if (w.tile_rows == kEngineTileRows && n % kEngineTileRows == 0) {
    __m512i acc[kEngineTileRows][4];
    for (int r = 0; r < kEngineTileRows; ++r) acc[r][0] = _mm512_setzero_si512();
    for (; n + kEngineTileRows <= n1; n += kEngineTileRows) walk_tile4<true>(w.tile_start(n), nullptr, w.blocks_per_row(), acc);
    const __m512i t = _mm512_add_epi64(_mm512_add_epi64(acc[0][0], acc[1][0]), _mm512_add_epi64(acc[2][0], acc[3][0]));
    sum = static_cast<uint64_t>(_mm512_reduce_add_epi64(t));
  }
  if (n < n1) sum += read_avx512(w.rows_from(n), (n1 - n) * w.row_bytes());
  return sum;
}

}  // namespace

const KernelSet* avx512_kernels() {
  static const KernelSet k = [] {
    KernelSet s;
    s.name = "avx512vnni";
    s.gemv_a8 = s.gemv_a4 = gemv_vnni;
    s.gemm_a8 = s.gemm_a4 = gemm_vnni;
    s.head = head_avx512;
    s.attend = attend_avx512;
    s.silu_gate = silu_gate_avx512;
    s.relu2_gate = relu2_gate_avx512;
    s.quantize_a8 = quantize_a8_avx512;
    s.quantize_a4 = quantize_a4_avx512;
    s.read_bytes = read_avx512;
    s.read_ternary = read_ternary_avx512;
    return s;
  }();
  return &k;
}

}  // namespace bkd

#else
namespace bkd {
const KernelSet* avx512_kernels() { return nullptr; }
}  // namespace bkd
#endif

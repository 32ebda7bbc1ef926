// AVX2 kernels (no VNNI). vpmaddubsw multiplies 32 unsigned codes (w + 1 in {0,1,2}) by 32 signed
// activations and adds pairs into int16 lanes; we keep those int16 partial sums for as many blocks
// as their bound allows and widen to int32 (vpmaddwd with ones) only then. The bound is what
// differs between A8 and A4: one block adds 8 pair-sums per lane, each at most 2*2*128 = 512 (A8)
// or 2*2*8 = 32 (A4), so int16 holds 7 blocks of A8 but 127 of A4 (we widen every 64).
// Compiled with per-function target attributes.
#include "core/engine/kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/engine/kernel_prefetch.h"
#include "core/engine/kernel_tiles.h"

#define BKD_AVX2 __attribute__((target("avx2,fma")))

namespace bkd {
namespace {
using kernel_detail::kAttendPrefetchRows;
using kernel_detail::kDecodePrefetchBytes;
using kernel_detail::kWeightPrefetchBytes;
using kernel_detail::prefetch_attend_row;
using kernel_detail::TileFn;

constexpr int64_t kA8FlushBlocks = 7;   // 7 * 8 * 512 = 28672 <= 32767
constexpr int64_t kA4FlushBlocks = 64;  // 64 * 8 * 32 = 16384 <= 32767

template <int NR, int MT, int64_t FLUSH>
BKD_AVX2 void tile_avx2(const uint8_t* const* w, int64_t w_stride, const int8_t* const* a, int64_t blocks, int32_t* raw) {
  __m256i acc[NR][MT], part[NR][MT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < MT; ++t) acc[r][t] = part[r][t] = _mm256_setzero_si256();
  const __m256i mask = _mm256_set1_epi8(3);
  const __m256i ones = _mm256_set1_epi16(1);
  // The GEMV (one token: decode) loads each half block's lines before the previous half's
  // arithmetic and prefetches into L1, as the AVX-512 GEMV does (kernel_prefetch.h says why).
  constexpr bool kAhead = MT == 1;
  __m256i next[NR];
  if constexpr (kAhead)
    for (int r = 0; r < NR; ++r) {
      next[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[r]));
      _mm_prefetch(reinterpret_cast<const char*>(w[r]) + kDecodePrefetchBytes, _MM_HINT_T0);
    }
  for (int64_t b = 0; b < blocks; ++b) {
    for (int h = 0; h < 2; ++h) {
      __m256i wv[NR];
      if constexpr (kAhead) {
        for (int r = 0; r < NR; ++r) wv[r] = next[r];
        if (h == 0 || b + 1 < blocks)  // the next half: this block's second, or the next block's first
          for (int r = 0; r < NR; ++r) {
            const uint8_t* p = w[r] + (h == 0 ? b * w_stride + 32 : (b + 1) * w_stride);
            next[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
            if (h == 1) _mm_prefetch(reinterpret_cast<const char*>(p) + kDecodePrefetchBytes, _MM_HINT_T0);
          }
      } else {
        for (int r = 0; r < NR; ++r) {
          const uint8_t* p = w[r] + b * w_stride + h * 32;
          wv[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
          if (h == 0) _mm_prefetch(reinterpret_cast<const char*>(p) + kWeightPrefetchBytes, _MM_HINT_T1);
        }
      }
      for (int s = 0; s < 4; ++s) {
        __m256i code[NR];
        for (int r = 0; r < NR; ++r) code[r] = _mm256_and_si256(wv[r], mask);
        for (int t = 0; t < MT; ++t) {
          const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a[t] + b * kTernaryBlock + s * 64 + h * 32));
          for (int r = 0; r < NR; ++r) part[r][t] = _mm256_add_epi16(part[r][t], _mm256_maddubs_epi16(code[r], x));
        }
        for (int r = 0; r < NR; ++r) wv[r] = _mm256_srli_epi16(wv[r], 2);
      }
    }
    if ((b + 1) % FLUSH == 0 || b + 1 == blocks) {
      for (int r = 0; r < NR; ++r)
        for (int t = 0; t < MT; ++t) {
          acc[r][t] = _mm256_add_epi32(acc[r][t], _mm256_madd_epi16(part[r][t], ones));
          part[r][t] = _mm256_setzero_si256();
        }
    }
  }
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < MT; ++t) {
      __m128i v = _mm_add_epi32(_mm256_castsi256_si128(acc[r][t]), _mm256_extracti128_si256(acc[r][t], 1));
      v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0x4e));
      v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0xb1));
      raw[r * MT + t] = _mm_cvtsi128_si32(v);
    }
}

template <int64_t F>
struct Tables {
  static constexpr TileFn gemv[4][1] = {{tile_avx2<1, 1, F>}, {tile_avx2<2, 1, F>}, {tile_avx2<3, 1, F>}, {tile_avx2<4, 1, F>}};
  static constexpr TileFn gemm[2][4] = {
      {tile_avx2<1, 1, F>, tile_avx2<1, 2, F>, tile_avx2<1, 3, F>, tile_avx2<1, 4, F>},
      {tile_avx2<2, 1, F>, tile_avx2<2, 2, F>, tile_avx2<2, 3, F>, tile_avx2<2, 4, F>}};
};

void gemv_a8_avx2(const TernaryGemmArgs& a) { kernel_detail::run_tiles(Tables<kA8FlushBlocks>::gemv, a); }
void gemm_a8_avx2(const TernaryGemmArgs& a) { kernel_detail::run_tiles(Tables<kA8FlushBlocks>::gemm, a); }
void gemv_a4_avx2(const TernaryGemmArgs& a) { kernel_detail::run_tiles(Tables<kA4FlushBlocks>::gemv, a); }
void gemm_a4_avx2(const TernaryGemmArgs& a) { kernel_detail::run_tiles(Tables<kA4FlushBlocks>::gemm, a); }

template <TableFormat F>
BKD_AVX2 inline __m256 load8(const uint8_t* p, int64_t k) {
  if constexpr (F == TableFormat::F32) {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(p) + k);
  } else if constexpr (F == TableFormat::BF16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const uint16_t*>(p) + k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + k));
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
  }
}

template <TableFormat F>
inline float element(const EmbeddingTable& t, const uint8_t* p, int64_t k) {
  if constexpr (F == TableFormat::F32) return reinterpret_cast<const float*>(p)[k];
  else if constexpr (F == TableFormat::BF16) return bf16_to_float(reinterpret_cast<const uint16_t*>(p)[k]);
  else return static_cast<float>(reinterpret_cast<const int8_t*>(p)[k]);
}

template <TableFormat F>
BKD_AVX2 void head_avx2_t(const HeadArgs& a) {
  const EmbeddingTable& t = *a.table;
  const int64_t K = t.cols, K8 = K / 8 * 8;
  for (int64_t n = a.n0; n < a.n1; n += 4) {
    const int nr = static_cast<int>(std::min<int64_t>(4, a.n1 - n));
    const uint8_t* rows[4];
    for (int r = 0; r < 4; ++r) rows[r] = t.row_data(n + std::min(r, nr - 1));
    for (int64_t m = 0; m < a.rows; ++m) {
      const float* x = a.x + m * a.x_stride;
      // Two accumulators per row (alternate groups of 8): one chain of dependent FMAs per row
      // held the int8 head to ~2 times its probe at 7B. Each row's line is prefetched into L1
      // kDecodePrefetchBytes ahead on the first token's pass, as the AVX-512 head does.
      __m256 acc[4][2];
      for (auto& row : acc) row[0] = row[1] = _mm256_setzero_ps();
      constexpr int64_t kStep = 64 / table_element_bytes(F);  // elements per cache line
      int64_t k = 0;
      for (; k + 16 <= K8; k += 16) {
        if (m == 0 && k % kStep == 0)
          for (int r = 0; r < 4; ++r)
            _mm_prefetch(reinterpret_cast<const char*>(rows[r] + k * table_element_bytes(F)) + kDecodePrefetchBytes, _MM_HINT_T0);
        const __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
        for (int r = 0; r < 4; ++r) {
          acc[r][0] = _mm256_fmadd_ps(load8<F>(rows[r], k), x0, acc[r][0]);
          acc[r][1] = _mm256_fmadd_ps(load8<F>(rows[r], k + 8), x1, acc[r][1]);
        }
      }
      if (k < K8) {
        const __m256 xv = _mm256_loadu_ps(x + k);
        for (int r = 0; r < 4; ++r) acc[r][0] = _mm256_fmadd_ps(load8<F>(rows[r], k), xv, acc[r][0]);
      }
      for (int r = 0; r < nr; ++r) {
        const __m256 a2 = _mm256_add_ps(acc[r][0], acc[r][1]);
        __m128 v = _mm_add_ps(_mm256_castps256_ps128(a2), _mm256_extractf128_ps(a2, 1));
        v = _mm_add_ps(v, _mm_movehl_ps(v, v));
        v = _mm_add_ss(v, _mm_movehdup_ps(v));
        float s = _mm_cvtss_f32(v);
        for (int64_t k = K8; k < K; ++k) s += element<F>(t, rows[r], k) * x[k];
        if constexpr (F == TableFormat::I8) s *= t.row_scale[n + r];
        a.out[m * a.out_stride + n + r] = s;
      }
    }
  }
}

void head_avx2(const HeadArgs& a) {
  switch (a.table->format) {
    case TableFormat::F32: return head_avx2_t<TableFormat::F32>(a);
    case TableFormat::BF16: return head_avx2_t<TableFormat::BF16>(a);
    case TableFormat::I8: return head_avx2_t<TableFormat::I8>(a);
  }
}

BKD_AVX2 uint64_t read_avx2(const uint8_t* p, int64_t n) {
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  int64_t i = 0;
  for (; i + 128 <= n; i += 128) {
    s0 = _mm256_add_epi64(s0, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    s1 = _mm256_add_epi64(s1, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    s2 = _mm256_add_epi64(s2, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    s3 = _mm256_add_epi64(s3, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  s0 = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), s0);
  uint64_t s = lanes[0] + lanes[1] + lanes[2] + lanes[3];
  for (; i < n; ++i) s += p[i];
  return s;
}

// e^x for 8 floats, the same steps as kernels_avx512.cc's exp512 (clamp, n = round(x log2 e), the
// Cephes polynomial on the remainder) with 2^n applied as two exact power-of-two factors 2^(n>>1) and
// 2^(n - (n>>1)), each within the normal range, instead of VSCALEFPS: the same values bit for bit
// (both scalings are exact). A NaN stays NaN (MAXPS/MINPS return their second operand for a NaN).
BKD_AVX2 inline __m256 exp256(__m256 x) {
  x = _mm256_min_ps(_mm256_set1_ps(88.72283f), _mm256_max_ps(_mm256_set1_ps(-87.33654f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i ni = _mm256_cvtps_epi32(n);  // in [-126, 128]
  const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 f1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 f2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, f1), f2);
}

// Lanes [0, count) of 8 set (count in [0, 8]), for masked loads and stores of a tail.
BKD_AVX2 inline __m256i lane_mask(int64_t count) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(count)), idx);
}

BKD_AVX2 inline float hmax256(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

BKD_AVX2 inline float hsum256(__m256 v) {
  __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_add_ps(m, _mm_movehl_ps(m, m));
  m = _mm_add_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

BKD_AVX2 void silu_gate_avx2(float* g, const float* u, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = lane_mask(std::min<int64_t>(8, n - i));
    const __m256 x = _mm256_maskload_ps(g + i, m);
    const __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), x));
    _mm256_maskstore_ps(g + i, m, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)), _mm256_maskload_ps(u + i, m)));
  }
}

BKD_AVX2 void relu2_gate_avx2(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; i += 8) {
    const __m256i m = lane_mask(std::min<int64_t>(8, n - i));
    const __m256 r = _mm256_max_ps(_mm256_setzero_ps(), _mm256_maskload_ps(g + i, m));  // NaN: the second operand
    _mm256_maskstore_ps(g + i, m, _mm256_mul_ps(_mm256_mul_ps(r, r), _mm256_maskload_ps(u + i, m)));
  }
}

// round(clamp(x * scale, lo, hi)) of act_quant_row.h, 8 floats at a time, bit for bit (the
// operations and operand orders of kernels_avx512.cc's quantize_codes_avx512): the codes into q,
// their sum returned. Masked-off lanes load 0: code 0 in the sum.
BKD_AVX2 int32_t quantize_codes_avx2(const float* x, int64_t cols, float scale, float lo_code, float hi_code, int8_t* q) {
  const __m256 vs = _mm256_set1_ps(scale), lo = _mm256_set1_ps(lo_code), hi = _mm256_set1_ps(hi_code);
  const __m256 magic = _mm256_set1_ps(12582912.0f);
  __m256i sum = _mm256_setzero_si256();
  for (int64_t k = 0; k < cols; k += 8) {
    const int64_t valid = std::min<int64_t>(8, cols - k);
    const __m256i m = lane_mask(valid);
    const __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_maskload_ps(x + k, m), vs), lo), hi);
    const __m256i c = _mm256_and_si256(_mm256_cvtps_epi32(_mm256_sub_ps(_mm256_add_ps(v, magic), magic)), m);
    const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1));
    const __m128i b8 = _mm_packs_epi16(w16, w16);  // the 8 codes in order (already within int8)
    if (valid == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(q + k), b8);
    } else {
      alignas(16) int8_t tail[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tail), b8);
      for (int64_t t = 0; t < valid; ++t) q[k + t] = tail[t];
    }
    sum = _mm256_add_epi32(sum, c);
  }
  const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
  const __m128i s2 = _mm_add_epi32(s4, _mm_unpackhi_epi64(s4, s4));
  return _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 1)));
}

// The A8 quantizer of act_quant_row.h, bit for bit. Masked-off lanes load 0: no effect on the absmax.
BKD_AVX2 int32_t quantize_a8_avx2(const float* x, int64_t cols, int8_t* q, float* mult) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 amax = _mm256_setzero_ps();
  for (int64_t k = 0; k < cols; k += 8) {
    const __m256 v = _mm256_maskload_ps(x + k, lane_mask(std::min<int64_t>(8, cols - k)));
    amax = _mm256_max_ps(_mm256_andnot_ps(sign, v), amax);
  }
  const float s = (1.0f / std::max(hmax256(amax), kActEps)) * 127.0f;
  *mult = 1.0f / s;
  return quantize_codes_avx2(x, cols, s, -128.0f, 127.0f, q);
}

// The A4 quantizer of act_quant_row.h, bit for bit: the mean's eight partial double sums are the
// lanes of two 4-double vectors (element k into partial k % 8; masked-off lanes add +0.0, which
// leaves a sum of absolute values as it is), added in partial order.
BKD_AVX2 int32_t quantize_a4_avx2(const float* x, int64_t cols, int8_t* q, float* mult) {
  const __m256d sign = _mm256_set1_pd(-0.0);
  __m256d part_lo = _mm256_setzero_pd(), part_hi = _mm256_setzero_pd();
  for (int64_t k = 0; k < cols; k += 8) {
    const __m256 v = _mm256_maskload_ps(x + k, lane_mask(std::min<int64_t>(8, cols - k)));
    part_lo = _mm256_add_pd(part_lo, _mm256_andnot_pd(sign, _mm256_cvtps_pd(_mm256_castps256_ps128(v))));
    part_hi = _mm256_add_pd(part_hi, _mm256_andnot_pd(sign, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1))));
  }
  alignas(32) double part[kA4MeanPartials];
  _mm256_store_pd(part, part_lo);
  _mm256_store_pd(part + 4, part_hi);
  double total = 0.0;
  for (int j = 0; j < kA4MeanPartials; ++j) total += part[j];
  const float b = static_cast<float>(total / static_cast<double>(cols));
  *mult = a4_code_value(b);
  return quantize_codes_avx2(x, cols, a4_pre_scale(b), -8.0f, 7.0f, q);
}

// Lane i of the result = the sum of the lanes of v[i], for 8 float vectors.
BKD_AVX2 inline __m256 sum8_ps(const __m256* v) {
  const __m256 t0 = _mm256_hadd_ps(v[0], v[1]), t1 = _mm256_hadd_ps(v[2], v[3]);
  const __m256 t2 = _mm256_hadd_ps(v[4], v[5]), t3 = _mm256_hadd_ps(v[6], v[7]);
  const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);  // per 128-bit half: v0..v3, v4..v7
  return _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
}

// kernels_avx512.cc's attention 8 lanes wide: scores 8 positions at a time (each key row read in
// order into its own accumulator, one transpose-add tree for the 8), exponentials 8 at a time
// (exp256), the weighted sum of values position by position over 64 dimensions at a time, the
// row kAttendPrefetchRows ahead prefetched in both loops, on into the next head (kernel_prefetch.h).
BKD_AVX2 void attend_avx2(const AttendArgs& a) {
  const int64_t n = a.n, hd = a.head_dim;
  float* scores = a.scores;
  const __m256 scale = _mm256_set1_ps(a.scale);
  __m256 vmax = _mm256_set1_ps(-INFINITY);
  for (int64_t j = 0; j < n; j += 8) {
    const int64_t count = std::min<int64_t>(8, n - j);
    const __m256i m = lane_mask(count);
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) prefetch_attend_row(a, j + kAttendPrefetchRows + r);
    __m256 acc[8];
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
      acc[r] = _mm256_setzero_ps();
      if (r >= count) continue;
      const float* k = a.k + (j + r) * a.k_stride;
      for (int64_t i = 0; i < hd; i += 8) {
        const __m256i mi = lane_mask(std::min<int64_t>(8, hd - i));
        acc[r] = _mm256_fmadd_ps(_mm256_maskload_ps(a.q + i, mi), _mm256_maskload_ps(k + i, mi), acc[r]);
      }
    }
    const __m256 s = _mm256_mul_ps(sum8_ps(acc), scale);
    _mm256_maskstore_ps(scores + j, m, s);
    vmax = _mm256_blendv_ps(vmax, _mm256_max_ps(vmax, s), _mm256_castsi256_ps(m));
  }
  const __m256 mx = _mm256_set1_ps(hmax256(vmax));
  __m256 vsum = _mm256_setzero_ps();
  for (int64_t j = 0; j < n; j += 8) {
    const __m256i m = lane_mask(std::min<int64_t>(8, n - j));
    const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(scores + j, m), mx)), _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(scores + j, m, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  const float inv = 1.0f / hsum256(vsum);
  // Position-major over up to 64 dimensions at a time (kernels_avx512.cc says why).
  for (int64_t i0 = 0; i0 < hd; i0 += 64) {
    __m256i mc[8];
    int64_t live = 0;
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) {
      const int64_t left = std::max<int64_t>(0, std::min<int64_t>(8, hd - i0 - 8 * c));
      mc[c] = lane_mask(left);
      live += left > 0;
    }
    __m256 acc[8];
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c) acc[c] = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const __m256 w = _mm256_set1_ps(scores[j] * inv);
      const float* v = a.v + j * a.v_stride + i0;
      if (i0 == 0) prefetch_attend_row(a, n + j + kAttendPrefetchRows);  // whole rows: a later pass reads them from L2
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c)
        if (c < live) acc[c] = _mm256_fmadd_ps(w, _mm256_maskload_ps(v + 8 * c, mc[c]), acc[c]);
    }
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c)
      if (c < live) _mm256_maskstore_ps(a.out + i0 + 8 * c, mc[c], acc[c]);
  }
}

}  // namespace

const KernelSet* avx2_kernels() {
  static const KernelSet k = [] {
    KernelSet s;
    s.name = "avx2";
    s.gemv_a8 = gemv_a8_avx2;
    s.gemm_a8 = gemm_a8_avx2;
    s.gemv_a4 = gemv_a4_avx2;
    s.gemm_a4 = gemm_a4_avx2;
    s.head = head_avx2;
    s.attend = attend_avx2;
    s.silu_gate = silu_gate_avx2;
    s.relu2_gate = relu2_gate_avx2;
    s.quantize_a8 = quantize_a8_avx2;
    s.quantize_a4 = quantize_a4_avx2;
    s.read_bytes = read_avx2;
    return s;
  }();
  return &k;
}

}  // namespace bkd

#else
namespace bkd {
const KernelSet* avx2_kernels() { return nullptr; }
}  // namespace bkd
#endif

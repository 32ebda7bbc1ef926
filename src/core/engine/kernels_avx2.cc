// AVX2 kernels (no VNNI). vpmaddubsw multiplies 32 unsigned codes (w + 1 in {0,1,2}) by 32 signed
// activations and adds pairs into int16 lanes; we keep those int16 partial sums for as many blocks
// as their bound allows and widen to int32 (vpmaddwd with ones) only then. The bound is what
// differs between A8 and A4: one block adds 8 pair-sums per lane, each at most 2*2*128 = 512 (A8)
// or 2*2*8 = 32 (A4), so int16 holds 7 blocks of A8 but 127 of A4 (we widen every 64).
// Compiled with per-function target attributes.
#include "core/engine/kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "core/engine/kernel_tiles.h"

#define BKD_AVX2 __attribute__((target("avx2,fma")))

namespace bkd {
namespace {
using kernel_detail::TileFn;

constexpr int64_t kA8FlushBlocks = 7;   // 7 * 8 * 512 = 28672 <= 32767
constexpr int64_t kA4FlushBlocks = 64;  // 64 * 8 * 32 = 16384 <= 32767

template <int NR, int MT, int64_t FLUSH>
BKD_AVX2 void tile_avx2(const uint8_t* const* w, const int8_t* const* a, int64_t blocks, int32_t* raw) {
  __m256i acc[NR][MT], part[NR][MT];
  for (int r = 0; r < NR; ++r)
    for (int t = 0; t < MT; ++t) acc[r][t] = part[r][t] = _mm256_setzero_si256();
  const __m256i mask = _mm256_set1_epi8(3);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < blocks; ++b) {
    for (int h = 0; h < 2; ++h) {
      __m256i wv[NR];
      for (int r = 0; r < NR; ++r)
        wv[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[r] + b * kTernaryBlockBytes + h * 32));
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
      __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      for (int64_t k = 0; k < K8; k += 8) {
        const __m256 xv = _mm256_loadu_ps(x + k);
        for (int r = 0; r < 4; ++r) acc[r] = _mm256_fmadd_ps(load8<F>(rows[r], k), xv, acc[r]);
      }
      for (int r = 0; r < nr; ++r) {
        __m128 v = _mm_add_ps(_mm256_castps256_ps128(acc[r]), _mm256_extractf128_ps(acc[r], 1));
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
    s.attend = ref_kernels().attend;  // no AVX2 attention or SiLU yet: the reference
    s.silu_gate = ref_kernels().silu_gate;
    s.relu2_gate = ref_kernels().relu2_gate;
    s.quantize_a8 = ref_kernels().quantize_a8;
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

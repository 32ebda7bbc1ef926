#pragma once
// Software prefetch shared by the SIMD kernel sets (internal to kernels_avx2.cc / kernels_avx512.cc).
#include <immintrin.h>

#include <cstdint>

#include "core/engine/kernels.h"

namespace bkd::kernel_detail {

// Attention reads each position's keys and values once, one head's run of 512 bytes at a time, a
// whole cache row (all heads) apart: runs the hardware prefetchers do not follow. Without help one
// core read a 7B layer's KV cache at 1024 positions at 9.6-13 GB/s against 27-31 for a read-only
// pass over the same bytes (engine_kernels_bench attend_layer_from_dram; a head-major layout did no
// better). So the kernels prefetch the row kAttendPrefetchRows ahead in the order they read rows:
// this head's keys, its values, then the next head's keys and values (AttendArgs::next_k), so that
// a short context's head, shorter than the distance, is prefetched too.
constexpr int64_t kAttendPrefetchRows = 32;

// Into L1: row s of that order (nothing past the next head's values), one prefetch per 64 bytes.
// Always inlined: GCC 12 counts prefetches as no side effect, so an outlined copy is "pure" and its
// calls are deleted (they were, without this attribute: no prefetch was left in the kernels).
__attribute__((always_inline)) inline void prefetch_attend_row(const AttendArgs& a, int64_t s) {
  const float* p;
  if (s < a.n) {
    p = a.k + s * a.k_stride;
  } else if ((s -= a.n) < a.n) {
    p = a.v + s * a.v_stride;
  } else if (a.next_k && (s -= a.n) < 2 * a.next_n) {
    p = s < a.next_n ? a.next_k + s * a.k_stride : a.next_v + (s - a.next_n) * a.v_stride;
  } else {
    return;
  }
  for (int64_t i = 0; i < a.head_dim; i += 16) _mm_prefetch(reinterpret_cast<const char*>(p + i), _MM_HINT_T0);
}

}  // namespace bkd::kernel_detail

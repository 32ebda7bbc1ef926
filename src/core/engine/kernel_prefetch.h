#pragma once
// Software prefetch shared by the SIMD kernel sets (internal to kernels_avx2.cc / kernels_avx512.cc).
#include <immintrin.h>

#include <cstdint>

#include "core/engine/kernels.h"

namespace bkd::kernel_detail {

// The GEMM tiles (and the GEMV tile of other layouts than the engine's 4-row tiles) prefetch each
// line they load this far ahead into L2 (_MM_HINT_T1): in the engine's 4-row tiles the weights are
// one address stream. A 16-token 7B prefill, whose first pass over each tile reads it from memory,
// took 14.9-16.0 ms/token without and 10.4-12.2 with (2 threads); L1 or 32 KiB measured no better
// (docs/ENGINE.md).
constexpr int64_t kWeightPrefetchBytes = 16384;

// The two streams of a decode step, the GEMV of the engine's 4-row tiles and the head, prefetch into
// L1 (_MM_HINT_T0) instead, at this distance, with their loads one step ahead of their arithmetic
// (kernels_avx512.cc: walk_tile4, head_tile; the AVX2 set's GEMV tile and head prefetch alike). One
// core streamed the 7B projections at 0.84-0.89 times a plain read loop's time with both, 1.05-1.07
// with the loads ahead and the L2 prefetch, 1.33-1.34 with neither (gemv_mix_bench, two runs); 8 KiB
// measured alike, 32 KiB no better. The 7B head: 1.1-1.5 times its probe with the L2 prefetch (its
// loads one group ahead or not), 0.85-1.03 with L1 (docs/ENGINE.md).
constexpr int64_t kDecodePrefetchBytes = 16384;

// Attention reads each key and value once, one head's 512-byte row per position, and without help
// it runs at memory latency, not bandwidth: one core read a 7B layer's KV cache at 1024 positions at
// 8.9-11.7 GB/s (stored by position or head-major alike) against 21-26 for a read-only pass over the
// same bytes (engine_kernels_bench attend_layer_from_dram; docs/ENGINE.md). So the kernels prefetch
// the row kAttendPrefetchRows ahead in the order they read rows: this head's keys, its values, then
// the next head's keys and values (AttendArgs::next_k), so that a short context's head, shorter
// than the distance, is prefetched too. Head-major with it: 17.5-20.0 GB/s.
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

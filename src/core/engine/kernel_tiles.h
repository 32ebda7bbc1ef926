#pragma once
// Shared driver of the SIMD ternary kernels (internal to kernels_avx2.cc / kernels_avx512.cc).
// A tile computes NR weight rows x MT tokens over whole rows of blocks and returns the raw sums of
// code * q (code = w + 1); the driver walks the output in tiles, picks the smaller tile shapes for
// the edges, and subtracts sum(q) to get sum(w * q).
#include <algorithm>

#include "core/engine/kernels.h"

namespace bkd::kernel_detail {

// raw[r * MT_used + t] = sum over blocks of codes(w[r]) . a[t]; block b of row r is at
// w[r] + b * w_stride (TernaryMatrix::block, either layout).
using TileFn = void (*)(const uint8_t* const* w, int64_t w_stride, const int8_t* const* a, int64_t blocks, int32_t* raw);

// Block 0 of the rows of groups of NR rows, n = n0, n0 + NR, ...: when the tiling divides NR and n0
// starts a tile, row n + r lies at the same offset from tile_start(n) in every group, so a group
// costs an add instead of block()'s 64-bit division per row (4 per 4 KiB of 7B weights in the
// 4-row GEMV). Otherwise it falls back to block().
template <int NR>
class RowGroups {
 public:
  RowGroups(const TernaryMatrix& w, int64_t n0) : w_(w), regular_(NR % w.tile_rows == 0 && n0 % w.tile_rows == 0) {
    for (int r = 0; r < NR; ++r) offset_[r] = regular_ ? w.offset_in_tiles(r) : 0;
  }
  // Block 0 of rows n .. n + nr - 1 (n = n0 + a multiple of NR, nr <= NR) into wr.
  void rows(int64_t n, int nr, const uint8_t** wr) const {
    if (regular_) {
      const uint8_t* base = w_.tile_start(n);
      for (int r = 0; r < nr; ++r) wr[r] = base + offset_[r];
    } else {
      for (int r = 0; r < nr; ++r) wr[r] = w_.block(n + r, 0);
    }
  }

 private:
  const TernaryMatrix& w_;
  const bool regular_;
  int64_t offset_[NR];
};

template <int NR, int MT>
void run_tiles(const TileFn (&tiles)[NR][MT], const TernaryGemmArgs& args) {
  const TernaryMatrix& W = *args.w;
  const QuantizedActs& X = *args.x;
  const int64_t blocks = W.blocks_per_row();
  const RowGroups<NR> groups(W, args.n0);
  for (int64_t n = args.n0; n < args.n1; n += NR) {
    const int nr = static_cast<int>(std::min<int64_t>(NR, args.n1 - n));
    const uint8_t* wr[NR];
    groups.rows(n, nr, wr);
    for (int64_t m = 0; m < X.rows; m += MT) {
      const int mt = static_cast<int>(std::min<int64_t>(MT, X.rows - m));
      const int8_t* ar[MT];
      for (int t = 0; t < mt; ++t) ar[t] = X.row(m + t);
      int32_t raw[NR * MT];
      tiles[nr - 1][mt - 1](wr, W.block_stride(), ar, blocks, raw);
      for (int r = 0; r < nr; ++r)
        for (int t = 0; t < mt; ++t) args.acc[(m + t) * args.acc_stride + n + r] = raw[r * mt + t] - X.sum[m + t];
    }
  }
}

}  // namespace bkd::kernel_detail

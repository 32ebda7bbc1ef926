#include "torch/kernels/softmax_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>


namespace bkd {

namespace softmax_sse2 {
#define BKD_LANES 4
#include "torch/kernels/softmax_rows.inc"
#undef BKD_LANES
}  // namespace softmax_sse2

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace softmax_avx2 {
#define BKD_LANES 8
#include "torch/kernels/softmax_rows.inc"
#undef BKD_LANES
}  // namespace softmax_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl")
namespace softmax_avx512 {
#define BKD_LANES 16
#include "torch/kernels/softmax_rows.inc"
#undef BKD_LANES
}  // namespace softmax_avx512
#pragma GCC pop_options

namespace {

const SoftmaxKernels kKernels[] = {
    {"sse2", RowIsa::Sse2, softmax_sse2::softmax_row, softmax_sse2::softmax_backward_row, softmax_sse2::logsumexp_row,
     softmax_sse2::scaled_softmax_row, softmax_sse2::bf16_row_to_float, softmax_sse2::float_row_to_bf16},
    {"avx2", RowIsa::Avx2, softmax_avx2::softmax_row, softmax_avx2::softmax_backward_row, softmax_avx2::logsumexp_row,
     softmax_avx2::scaled_softmax_row, softmax_avx2::bf16_row_to_float, softmax_avx2::float_row_to_bf16},
    {"avx512", RowIsa::Avx512, softmax_avx512::softmax_row, softmax_avx512::softmax_backward_row,
     softmax_avx512::logsumexp_row, softmax_avx512::scaled_softmax_row, softmax_avx512::bf16_row_to_float,
     softmax_avx512::float_row_to_bf16},
};

}  // namespace

const SoftmaxKernels& softmax_kernels(const std::string& name) { return pick_row_kernels(kKernels, name, "softmax kernel"); }

std::vector<std::string> runnable_softmax_kernels() { return runnable_row_kernel_names(kKernels); }

}  // namespace bkd

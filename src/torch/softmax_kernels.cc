#include "torch/softmax_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/util/error.h"
#include "core/util/sysinfo.h"

namespace bkd {

namespace softmax_sse2 {
#define BKD_LANES 4
#include "torch/softmax_rows.inc"
#undef BKD_LANES
}  // namespace softmax_sse2

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace softmax_avx2 {
#define BKD_LANES 8
#include "torch/softmax_rows.inc"
#undef BKD_LANES
}  // namespace softmax_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl")
namespace softmax_avx512 {
#define BKD_LANES 16
#include "torch/softmax_rows.inc"
#undef BKD_LANES
}  // namespace softmax_avx512
#pragma GCC pop_options

namespace {

const SoftmaxKernels kKernels[] = {
    {"sse2", softmax_sse2::softmax_row, softmax_sse2::softmax_backward_row, softmax_sse2::logsumexp_row,
     softmax_sse2::scaled_softmax_row, softmax_sse2::bf16_row_to_float, softmax_sse2::float_row_to_bf16, [] { return true; }},
    {"avx2", softmax_avx2::softmax_row, softmax_avx2::softmax_backward_row, softmax_avx2::logsumexp_row,
     softmax_avx2::scaled_softmax_row, softmax_avx2::bf16_row_to_float, softmax_avx2::float_row_to_bf16,
     [] { return cpu_features().avx2 && cpu_features().fma; }},
    {"avx512", softmax_avx512::softmax_row, softmax_avx512::softmax_backward_row, softmax_avx512::logsumexp_row,
     softmax_avx512::scaled_softmax_row, softmax_avx512::bf16_row_to_float, softmax_avx512::float_row_to_bf16,
     [] {
       const CpuFeatures& f = cpu_features();
       return f.avx512f && f.avx512bw && f.avx512vl;
     }},
};

}  // namespace

const SoftmaxKernels& softmax_kernels(const std::string& name) {
  if (name.empty()) {
    static const SoftmaxKernels* best = [] {
      const SoftmaxKernels* k = nullptr;
      for (const auto& c : kKernels)
        if (c.supported()) k = &c;
      return k;
    }();
    return *best;
  }
  for (const auto& k : kKernels)
    if (name == k.name && k.supported()) return k;
  throw Error("softmax kernel '" + name + "' is unknown or not supported by this CPU");
}

std::vector<std::string> runnable_softmax_kernels() {
  std::vector<std::string> out;
  for (const auto& k : kKernels)
    if (k.supported()) out.push_back(k.name);
  return out;
}

}  // namespace bkd

#pragma once
// Row kernels for softmax-shaped work (attention probabilities, token cross-entropy), one set per
// instruction set from softmax_rows.inc, chosen at run time from CPUID (SSE2 is the baseline every
// x86-64 runs). Rows are float32.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "torch/kernels/row_isa.h"

namespace bkd {

struct SoftmaxKernels {
  const char* name;
  RowIsa isa;
  void (*softmax)(float* x, int64_t n);  // in place
  void (*softmax_backward)(const float* p, const float* dp, float* ds, int64_t n, float scale);
  double (*logsumexp)(const float* z, int64_t n);
  void (*scaled_softmax)(const float* z, int64_t n, float lse, float g, float* out);
  void (*bf16_to_float)(const uint16_t* in, float* out, int64_t n);  // bf16 as its bits
  void (*float_to_bf16)(const float* in, uint16_t* out, int64_t n);  // round to nearest even
};

// By name ("sse2", "avx2", "avx512"); "" gives the widest this CPU runs. Throws Error for a name
// that is unknown or not supported here.
const SoftmaxKernels& softmax_kernels(const std::string& name = "");
std::vector<std::string> runnable_softmax_kernels();  // widest last

// A bf16 tensor's data as the raw 16-bit patterns the conversion kernels take.
inline uint16_t* bf16_bits(const torch::Tensor& t) { return reinterpret_cast<uint16_t*>(t.data_ptr<c10::BFloat16>()); }

}  // namespace bkd

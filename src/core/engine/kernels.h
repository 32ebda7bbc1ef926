#pragma once
// Kernel table of the packed engine. Every entry has a scalar reference (kernels_ref.cc) and
// AVX2 / AVX-512 VNNI variants (kernels_avx2.cc, kernels_avx512.cc, compiled with per-function
// target attributes, never a global -march), chosen once at run time from CPUID. The AMX set
// (kernels_amx.cc) is the AVX-512 VNNI set with its GEMM on the tile unit.
//
// Ternary kernels compute the exact integer part of a BitLinear over a range of output rows:
//   acc[m * acc_stride + n] = sum_k W[n, k] * q[m, k]      for n in [n0, n1), m in [0, x.rows)
// (int32; the SIMD variants use the unsigned codes w + 1 and subtract sum(q), ggml/bitnet.cpp style).
// GEMV is tiled for one token (decode), GEMM for many (prefill, eval). The A4 entries require codes
// within [-8, 7] (the AVX2 one keeps int16 partial sums, which is what makes 4-bit cheaper there).
//
// Head kernels: out[m * out_stride + n] = sum_k table[n, k] * x[m * x_stride + k] (float, any order).
// Attention kernels: one query head's softmax attention over its cached keys and values (AttendArgs).
// Elementwise: the SiLU gate. The SIMD variants use a polynomial exp (within 2 ulp of the true value).
#include <cstdint>
#include <string>
#include <vector>

#include "core/engine/act_quant.h"
#include "core/engine/embedding_table.h"
#include "core/engine/ternary_format.h"

namespace bkd {

struct TernaryGemmArgs {
  const TernaryMatrix* w = nullptr;
  const QuantizedActs* x = nullptr;
  int64_t n0 = 0, n1 = 0;
  int32_t* acc = nullptr;
  int64_t acc_stride = 0;
};
using TernaryKernelFn = void (*)(const TernaryGemmArgs&);

struct HeadArgs {
  const EmbeddingTable* table = nullptr;
  const float* x = nullptr;
  int64_t rows = 0, x_stride = 0;
  int64_t n0 = 0, n1 = 0;
  float* out = nullptr;
  int64_t out_stride = 0;
};
using HeadKernelFn = void (*)(const HeadArgs&);

// One query head against n cached positions (causal attention of a decode or prefill row):
//   score[j] = scale * sum_i q[i] * k[j * k_stride + i]
//   w = softmax(score);  out[i] = sum_j w[j] * v[j * v_stride + i]
// Position j of a head's keys is k + j * k_stride (the engine stores each head's positions in one
// run: k_stride = head_dim). `scores` is n floats of scratch.
struct AttendArgs {
  const float* q = nullptr;
  const float* k = nullptr;
  int64_t k_stride = 0;
  const float* v = nullptr;
  int64_t v_stride = 0;
  int64_t n = 0, head_dim = 0;
  float scale = 1.0f;
  float* scores = nullptr;
  float* out = nullptr;
  // Optional hint: the keys and values the next call will read (the next head: the same strides,
  // next_n positions). The SIMD sets prefetch them once their own lines are under way; nothing
  // reads them, so a wrong hint costs time, never results.
  const float* next_k = nullptr;
  const float* next_v = nullptr;
  int64_t next_n = 0;
};
using AttendFn = void (*)(const AttendArgs&);

// Gated FFN inner products in place: SiLU g[i] = g[i] / (1 + exp(-g[i])) * u[i]; squared ReLU
// g[i] = max(g[i], 0)^2 * u[i] (a NaN stays NaN).
using GateFn = void (*)(float* g, const float* u, int64_t n);

struct KernelSet {
  const char* name = "";
  TernaryKernelFn gemv_a8 = nullptr, gemm_a8 = nullptr;
  TernaryKernelFn gemv_a4 = nullptr, gemm_a4 = nullptr;
  HeadKernelFn head = nullptr;
  AttendFn attend = nullptr;
  GateFn silu_gate = nullptr, relu2_gate = nullptr;
  QuantizeRowFn quantize_a8 = nullptr;  // act_quant.h's quantize_a8_codes, bit for bit
  QuantizeRowFn quantize_a4 = nullptr;  // act_quant.h's quantize_a4_codes, bit for bit
  // Stream-reads n bytes and returns a checksum (the dry-run's bandwidth probe).
  uint64_t (*read_bytes)(const uint8_t* p, int64_t n) = nullptr;
  // Optional (null: read_bytes over the rows' bytes): reads rows n0 .. n1 of w with this set's GEMV
  // access pattern (its loads and prefetches, no arithmetic) and returns a checksum: the probe for
  // the projections, so that their floor is what the GEMV's own reads could reach. The checksum is
  // read_bytes's over the same bytes.
  uint64_t (*read_ternary)(const TernaryMatrix& w, int64_t n0, int64_t n1) = nullptr;
  // Optional (null: nothing to do): lays out quantized activations for this set's GEMM once,
  // before a region's chunks run, into x.gemm_layout (the AMX set: the codes in tile order). The
  // GEMM does it per call when x.gemm_layout_ready is false, so calling it is an optimization only.
  void (*prepare_gemm)(QuantizedActs& x) = nullptr;

  // Picks GEMV or GEMM by the token count and A8 or A4 by the activations.
  TernaryKernelFn ternary_for(const QuantizedActs& x) const {
    const bool a4 = x.bits == ActBits::A4;
    if (x.rows == 1) return a4 ? gemv_a4 : gemv_a8;
    return a4 ? gemm_a4 : gemm_a8;
  }
};

const KernelSet& ref_kernels();
const KernelSet* avx2_kernels();    // nullptr when not compiled in
const KernelSet* avx512_kernels();  // AVX-512 F/BW/VL/VNNI; nullptr when not compiled in
const KernelSet* amx_kernels();     // AVX-512 VNNI + AMX-TILE/INT8 GEMM; nullptr when not compiled in
// The AMX set's tile program on an emulation of the tile registers (needs only AVX-512): how tests
// check its layout and edges on CPUs without AMX. Never dispatched; nullptr when not compiled in.
const KernelSet* amx_emulated_kernels();

// Every kernel set this CPU can run, reference first.
std::vector<const KernelSet*> runnable_kernel_sets();
// The fastest runnable set; the environment variable BKD_KERNELS=ref|avx2|avx512vnni|amx forces one
// (an unknown or unsupported name throws Error listing the valid ones).
const KernelSet& best_kernels();
const KernelSet& kernels_by_name(const std::string& name);

// Epilogue of a BitLinear: out[m, n] = acc[m, n] * w_scale * x.mult[m].
void scale_accumulators(const int32_t* acc, int64_t rows, int64_t n, int64_t stride, float w_scale,
                        const QuantizedActs& x, float* out, int64_t out_stride);

}  // namespace bkd

// Scalar reference kernels: the ground truth every SIMD variant is tested against. They use the
// plain signed weights (not the +1 codes) so they share no trick with the fast paths.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/engine/kernels.h"

namespace bkd {
namespace {

void ternary_ref(const TernaryGemmArgs& a) {
  const TernaryMatrix& W = *a.w;
  const QuantizedActs& X = *a.x;
  std::vector<int8_t> w(static_cast<size_t>(W.cols));
  for (int64_t n = a.n0; n < a.n1; ++n) {
    unpack_ternary_row(W, n, w.data());
    for (int64_t m = 0; m < X.rows; ++m) {
      const int8_t* q = X.row(m);
      int32_t acc = 0;
      for (int64_t k = 0; k < W.cols; ++k) acc += static_cast<int32_t>(w[k]) * q[k];
      a.acc[m * a.acc_stride + n] = acc;
    }
  }
}

void head_ref(const HeadArgs& a) {
  const EmbeddingTable& t = *a.table;
  std::vector<float> row(static_cast<size_t>(t.cols));
  for (int64_t n = a.n0; n < a.n1; ++n) {
    t.lookup(n, row.data());
    for (int64_t m = 0; m < a.rows; ++m) {
      const float* x = a.x + m * a.x_stride;
      float s = 0;
      for (int64_t k = 0; k < t.cols; ++k) s += row[k] * x[k];
      a.out[m * a.out_stride + n] = s;
    }
  }
}

void attend_ref(const AttendArgs& a) {
  float* scores = a.scores;
  float mx = -INFINITY;
  for (int64_t j = 0; j < a.n; ++j) {
    float s = 0;
    const float* k = a.k + j * a.k_stride;
    for (int64_t i = 0; i < a.head_dim; ++i) s += a.q[i] * k[i];
    scores[j] = s * a.scale;
    mx = std::max(mx, scores[j]);
  }
  float sum = 0;
  for (int64_t j = 0; j < a.n; ++j) sum += scores[j] = std::exp(scores[j] - mx);
  std::fill(a.out, a.out + a.head_dim, 0.0f);
  for (int64_t j = 0; j < a.n; ++j) {
    const float w = scores[j] / sum;
    const float* v = a.v + j * a.v_stride;
    for (int64_t i = 0; i < a.head_dim; ++i) a.out[i] += w * v[i];
  }
}

void silu_gate_ref(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void relu2_gate_ref(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float r = std::max(g[i], 0.0f);
    g[i] = r * r * u[i];
  }
}

uint64_t read_ref(const uint8_t* p, int64_t n) {
  uint64_t s = 0;
  for (int64_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v;
    __builtin_memcpy(&v, p + i, 8);
    s += v;
  }
  return s;
}

}  // namespace

const KernelSet& ref_kernels() {
  static const KernelSet k = [] {
    KernelSet s;
    s.name = "ref";
    s.gemv_a8 = s.gemm_a8 = s.gemv_a4 = s.gemm_a4 = ternary_ref;
    s.head = head_ref;
    s.attend = attend_ref;
    s.silu_gate = silu_gate_ref;
    s.relu2_gate = relu2_gate_ref;
    s.quantize_a8 = quantize_a8_codes;
    s.quantize_a4 = quantize_a4_codes;
    s.read_bytes = read_ref;
    return s;
  }();
  return k;
}

void scale_accumulators(const int32_t* acc, int64_t rows, int64_t n, int64_t stride, float w_scale,
                        const QuantizedActs& x, float* out, int64_t out_stride) {
  for (int64_t m = 0; m < rows; ++m) {
    const float f = w_scale * x.mult[m];
    const int32_t* a = acc + m * stride;
    float* o = out + m * out_stride;
    for (int64_t j = 0; j < n; ++j) o[j] = static_cast<float>(a[j]) * f;
  }
}

}  // namespace bkd

#pragma once
// The attention probabilities softmax(scores * scale + mask) as one autograd function with fused
// row kernels (run-time SSE2 / AVX2 / AVX-512 choice). Under CPU autocast the scores arrive in bf16
// from the q.k matmul and the probabilities leave in bf16 for the p.v matmul; the unfused form casts
// to float32, scales, adds the mask, takes the softmax and casts back, each a pass over [B, H, T, T].
// Computed in float32 either way; the backward uses the float32 probabilities.
#include <torch/torch.h>


namespace bkd {

// scores [B, H, Tq, Tk] bf16 or float32; mask additive float32 (0 or -inf), [1 or B, 1, Tq, Tk].
// Returns scores' dtype. Off the CPU or for float64: the reference below. `kernel` picks the row
// kernels by name (softmax_kernels.h; tests), nullptr the widest this CPU runs.
torch::Tensor attention_softmax(const torch::Tensor& scores, const torch::Tensor& mask, double scale,
                                const char* kernel = nullptr);

// The tensor-op form: softmax(float(scores) * scale + mask) in float32 (float64 stays float64).
torch::Tensor attention_softmax_reference(const torch::Tensor& scores, const torch::Tensor& mask, double scale);

}  // namespace bkd

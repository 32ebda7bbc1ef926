#pragma once
// The student's side of the KD loss: log q over the K+1 buckets (the teacher's candidate ids, then
// Other = every id that is not a candidate) from softmax(logits / T), row by row, as one autograd
// function with fused row kernels (softmax_kernels.h). The logits stay in their dtype (bf16 under
// autocast): no float32 copy of [N, V], no scatter, one log-sum-exp pass (a second only where the
// candidates hold over 99% of the mass and Other must be summed entry by entry), and the backward
// writes the [N, V] gradient once, in the logits' dtype.
#include <torch/torch.h>

namespace bkd {

// logits [..., V] float32 or bf16; ids [N, K] int64 in [0, V) (padding already pointing at one of its
// row's real candidates; duplicates allowed); has_any [N] bool: false for a row without real
// candidates, whose Other is then every id (log q = 0). Returns [N, K+1] float32.
// Off the CPU or for float64: student_log_buckets_reference.
torch::Tensor student_log_buckets(const torch::Tensor& logits, const torch::Tensor& ids, const torch::Tensor& has_any,
                                  double temperature, const char* kernel = nullptr);

// The tensor-op form: log_softmax(logits / T) gathered at ids, and Other as a log-sum-exp over the
// logits with the candidates set to -inf.
torch::Tensor student_log_buckets_reference(const torch::Tensor& logits, const torch::Tensor& ids,
                                            const torch::Tensor& has_any, double temperature);

}  // namespace bkd

#pragma once
// Per-position negative log-likelihood -log softmax(z)[target] of the logits, as one autograd
// function with fused row kernels (softmax_kernels.h). The logits stay in their dtype (bf16 from the
// autocast output matmul): no float32 copy of [N, V], no [N, V] log-probabilities; the backward
// writes dz = g * (softmax(z) - onehot(target)) straight in the logits' dtype, from the saved
// log normalizers. The CE and format losses are masked means of it.
#include <torch/torch.h>

namespace bkd {

// logits [..., V] float32 or bf16, targets [...] int64 in [0, V) (throws Error otherwise).
// Returns [N] float32, N = targets.numel(). Off the CPU or for float64: token_nll_reference.
torch::Tensor token_nll(const torch::Tensor& logits, const torch::Tensor& targets, const char* kernel = nullptr);

// nll_loss(log_softmax(float(logits))), the tensor-op form.
torch::Tensor token_nll_reference(const torch::Tensor& logits, const torch::Tensor& targets);

}  // namespace bkd

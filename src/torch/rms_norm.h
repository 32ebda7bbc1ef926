#pragma once
// RMSNorm over the last dimension, y = x / sqrt(mean(x^2) + eps) * gain, as one autograd function
// with a fused row-wise forward and backward (the tensor-op version costs ~16 passes over the
// activations per norm, and the student has 4 norms per block).
// float32 and float64 are computed as they are; bf16/fp16 inputs are computed (and returned) in float32.
#include <torch/torch.h>

namespace bkd {

torch::Tensor rms_norm_fused(const torch::Tensor& x, const torch::Tensor& gain, double eps);
// The same formula with tensor ops (the reference the fused version is tested against).
torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& gain, double eps);

}  // namespace bkd

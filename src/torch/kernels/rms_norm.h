#pragma once
// RMSNorm over the last dimension, y = x / sqrt(mean(x^2) + eps) * gain, as one autograd function
// with a fused row-wise forward and backward (the tensor-op version costs ~16 passes over the
// activations per norm, and the student has 4 norms per block).
// float32 and float64 are computed as they are; bf16/fp16 inputs are computed (and returned) in float32.
// rms_norm_quant fuses the activation quantizer that follows the norm into the same pass.
#include <torch/torch.h>

namespace bkd {

torch::Tensor rms_norm_fused(const torch::Tensor& x, const torch::Tensor& gain, double eps);
// The same formula with tensor ops (the reference the fused version is tested against).
torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& gain, double eps);

// The activation quantizer that follows a norm in the BitNet block (quant.h formulas).
enum class NormQuant { A8, A4 };

// quantize(rms_norm(x) * gain), row by row in one pass. The quantizer is straight-through, so the
// gradient is RMSNorm's. Under CPU autocast the result is written in the autocast dtype (the input
// type of the matmul that follows, which would otherwise cast it in another pass), else in float32;
// the values are those of the quant.h quantizer applied to rms_norm_fused's output, then cast.
// Off the CPU, or for float64: rms_norm_fused followed by the quant.h straight-through quantizer.
torch::Tensor rms_norm_quant(const torch::Tensor& x, const torch::Tensor& gain, double eps, NormQuant q);

}  // namespace bkd

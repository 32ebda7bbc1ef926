#pragma once
// Quantizers of the BitNet student as autograd functions with straight-through gradients
// (the backward pass is the identity, as `x + (q(x) - x).detach()` would give, without the extra
// graph nodes). Formulas (DESIGN.md §4):
//   ternary weights, per tensor: g = max(mean|W|, eps); Wq = clamp(round(W / g), -1, 1) * g
//   A8 activations, per token:   s = 127 / max(max|x|, eps); xq = clamp(round(x * s), -128, 127) / s
//   A4 activations, per token:   b = mean|x|; xq = clamp(round(x * sqrt(7) / (b + eps)), -8, 7) * b / sqrt(7)
// eps = 1e-5; round is round-half-to-even (torch.round). "Per token" = per row of the last dimension.
// The fused kernels make one pass per row; the *_reference functions are the plain tensor-op formulas
// the kernels are tested against.
#include <torch/torch.h>

namespace bkd {

constexpr double kQuantEps = 1e-5;

// Differentiable (straight-through) quantizers: what the model uses.
torch::Tensor ternary_weight_ste(const torch::Tensor& w);
torch::Tensor act_quant_a8_ste(const torch::Tensor& x);
torch::Tensor act_quant_a4_ste(const torch::Tensor& x);

// Fused forward kernels (no autograd). Input float32 or bfloat16, any shape; output same dtype/shape.
torch::Tensor ternary_weight_fused(const torch::Tensor& w);
torch::Tensor act_quant_a8_fused(const torch::Tensor& x);
torch::Tensor act_quant_a4_fused(const torch::Tensor& x);

// Reference formulas with tensor ops (float32), used by tests and as the readable definition.
torch::Tensor ternary_weight_reference(const torch::Tensor& w);
torch::Tensor act_quant_a8_reference(const torch::Tensor& x);
torch::Tensor act_quant_a4_reference(const torch::Tensor& x);

// Time spent in the fused quantizer kernels (for the training benchmark's step breakdown).
void set_quant_profiling(bool on);
double quant_profile_seconds();  // since the last reset
void reset_quant_profile();

// Per-tensor scale g of the ternary quantizer and the codes in {-1, 0, 1} (int8), for export.
double ternary_scale(const torch::Tensor& w);
torch::Tensor ternary_codes(const torch::Tensor& w);

}  // namespace bkd

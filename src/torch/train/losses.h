#pragma once
// Training losses. Every term is a mean over the positions it covers (0 when it covers none).
//  - kd_loss: KL(teacher || student) over K+1 buckets (the teacher's top-K ids + Other). The student's
//    Other is a log-sum-exp over the complement of the top-K ids (never 1 - sum p). Both sides' bucket
//    distributions are tempered the same way, as K+1 atoms: log_softmax(log bucket / T); the result is
//    scaled by T^2 (docs/TRAINING.md "Temperature": the minimum is the teacher's buckets at any T).
//    Positions with valid = false are masked out.
//  - ce_loss: cross-entropy of the hard next token.
//  - format_loss: the same cross-entropy restricted to targets in the structural-token set.
#include <torch/torch.h>

#include "torch/train/batch.h"

namespace bkd {

torch::Tensor ce_loss(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& mask);
torch::Tensor kd_loss(const torch::Tensor& logits, const torch::Tensor& ids, const torch::Tensor& logprobs,
                      const torch::Tensor& other, const torch::Tensor& valid, double temperature);
torch::Tensor format_loss(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& mask,
                          const torch::Tensor& structural_ids);

struct LossWeights {
  double kd = 1.0, ce = 0.5, format = 0.1, temperature = 1.0;
};

struct LossTerms {
  torch::Tensor total, kd, ce, format;  // kd undefined for CE-only batches
};

// logits [B, T, V] (any float dtype; computed in float32). structural_ids: int64 [S] (may be empty).
// CE-only batches (no KD targets) give the CE term weight 1, so the learning rate means the same.
LossTerms compute_losses(const torch::Tensor& logits, const Batch& batch, const LossWeights& w,
                         const torch::Tensor& structural_ids);

}  // namespace bkd

#pragma once
// A training batch: B sequences of T positions, right-padded.
// Strict next-token alignment: logits at position i predict token i+1, so
//   inputs[b, i] = token i,  targets[b, i] = token i+1,
//   KD targets at i = the teacher distribution stored for token position i+1.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace bkd {

// Teacher Top-K + Other per position (aligned with the logits). Undefined tensors: CE-only batch.
struct KdTargets {
  torch::Tensor ids;       // [B, T, K] int64, -1 where a position has fewer than K candidates
  torch::Tensor logprobs;  // [B, T, K] float32, teacher log-probabilities of ids (ignored where ids < 0)
  torch::Tensor other;     // [B, T] float32, teacher log-probability of everything else
  torch::Tensor valid;     // [B, T] bool, false: no teacher distribution here (masked out of the KL)
  bool defined() const { return ids.defined(); }
};

struct Batch {
  torch::Tensor inputs;     // [B, T] int64
  torch::Tensor targets;    // [B, T] int64 (0 at padding)
  torch::Tensor loss_mask;  // [B, T] bool: the target at this position is a real token
  torch::Tensor key_valid;  // [B, T] bool: the input at this position is a real token
  KdTargets kd;
  int64_t tokens = 0;       // real input tokens (what "seen tokens" counts)
  Batch to(const torch::Device& d) const;
};

// One KD shard row: a student token and the teacher's distribution for that token's position.
struct KdPosition {
  int32_t token = 0;
  bool valid = false;
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  float other = 0.0f;
};

// CE-only batch from token sequences (each up to T+1 tokens; shorter ones are padded).
Batch make_lm_batch(const std::vector<std::vector<int32_t>>& seqs, int64_t T);
// KD batch from sequences of shard rows at positions 0..L-1 (L <= T+1): row p trains logits p-1.
// Invalid rows get the safe padding P(other) = 1 and are masked. K: candidates kept per position.
Batch make_kd_batch(const std::vector<std::vector<KdPosition>>& seqs, int64_t T, int64_t K);

}  // namespace bkd

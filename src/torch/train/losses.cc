#include "torch/train/losses.h"

#include <limits>

#include "torch/kernels/kd_buckets.h"
#include "torch/kernels/token_nll.h"

namespace bkd {
namespace {

constexpr double kFloorLogprob = -1e4;  // finite stand-in for log 0: exp() is exactly 0, gradients stay finite

torch::Tensor masked_mean(const torch::Tensor& per_pos, const torch::Tensor& mask) {
  torch::Tensor m = mask.to(per_pos.scalar_type());
  return (per_pos * m).sum() / m.sum().clamp_min(1.0);
}

torch::Tensor flat_logits(const torch::Tensor& logits) { return logits.reshape({-1, logits.size(-1)}).to(torch::kFloat); }

}  // namespace

torch::Tensor ce_loss(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& mask) {
  return masked_mean(token_nll(logits, targets), mask.reshape({-1}));
}

torch::Tensor format_loss(const torch::Tensor& logits, const torch::Tensor& targets, const torch::Tensor& mask,
                          const torch::Tensor& structural_ids) {
  if (!structural_ids.defined() || structural_ids.numel() == 0) return flat_logits(logits).sum() * 0.0;
  torch::Tensor fmask = mask & torch::isin(targets, structural_ids.to(targets.device()));
  return ce_loss(logits, targets, fmask);
}

torch::Tensor kd_loss(const torch::Tensor& logits, const torch::Tensor& ids, const torch::Tensor& logprobs,
                      const torch::Tensor& other, const torch::Tensor& valid, double temperature) {
  const int64_t K = ids.size(-1);
  torch::Tensor id = ids.reshape({-1, K});
  torch::Tensor ok = valid.reshape({-1, 1}) & (id >= 0);                   // [N, K] real candidates
  torch::Tensor row_valid = valid.reshape({-1});
  const auto fopts = logprobs.options().dtype(torch::kFloat);

  // Teacher buckets; padding and invalid rows: P(other) = 1 (finite floor, not -inf).
  torch::Tensor t_top = torch::where(ok, logprobs.reshape({-1, K}).to(torch::kFloat),
                                     torch::full({}, kFloorLogprob, fopts));
  torch::Tensor t_other = torch::where(row_valid, other.reshape({-1}).to(torch::kFloat), torch::zeros({}, fopts));
  torch::Tensor t_buckets = torch::cat({t_top, t_other.unsqueeze(1)}, 1).clamp_min(kFloorLogprob);
  torch::Tensor log_p = torch::log_softmax(t_buckets / temperature, -1);  // [N, K+1]

  // Student buckets (kd_buckets.h), at T = 1. Padded ids point at the row's first id (duplicates change
  // nothing here); a row whose top-K is empty (all teacher mass in Other) keeps every id in Other.
  torch::Tensor first = id.select(1, 0).clamp_min(0).unsqueeze(1).expand_as(id);
  torch::Tensor sid = torch::where(ok, id, first);
  torch::Tensor q_buckets = student_log_buckets(logits, sid, ok.any(1), 1.0);
  // Tempered exactly as the teacher's: the K+1 buckets as atoms, softmax(log b / T). That map is a
  // bijection of the simplex, so KL(f_T(p) || f_T(q)) is 0 exactly when the student's buckets equal the
  // teacher's (docs/TRAINING.md, "Temperature"). Padding columns (duplicates of the first id) are set to
  // the floor first so they take no mass in the renormalization.
  torch::Tensor real = torch::cat({ok, torch::ones({ok.size(0), 1}, ok.options())}, 1);
  q_buckets = torch::where(real, q_buckets, torch::full({}, kFloorLogprob, q_buckets.options()));
  torch::Tensor log_q = temperature == 1.0 ? q_buckets : torch::log_softmax(q_buckets / temperature, -1);
  if (log_q.scalar_type() != log_p.scalar_type()) log_p = log_p.to(log_q.scalar_type());

  torch::Tensor kl = (log_p.exp() * (log_p - log_q)).sum(-1);  // [N]
  return masked_mean(kl, row_valid) * (temperature * temperature);
}

LossTerms compute_losses(const torch::Tensor& logits, const Batch& batch, const LossWeights& w,
                         const torch::Tensor& structural_ids) {
  LossTerms t;
  // One per-position NLL serves CE and the format loss.
  torch::Tensor nll = token_nll(logits, batch.targets);
  t.ce = masked_mean(nll, batch.loss_mask.reshape({-1}));
  if (structural_ids.defined() && structural_ids.numel() > 0) {
    torch::Tensor fmask = batch.loss_mask & torch::isin(batch.targets, structural_ids.to(batch.targets.device()));
    t.format = masked_mean(nll, fmask.reshape({-1}));
  } else {
    t.format = torch::zeros({}, nll.options());
  }
  if (batch.kd.defined()) {
    torch::Tensor valid = batch.kd.valid & batch.loss_mask;
    t.kd = kd_loss(logits, batch.kd.ids, batch.kd.logprobs, batch.kd.other, valid, w.temperature);
    t.total = w.kd * t.kd + w.ce * t.ce + w.format * t.format;
  } else {
    t.total = t.ce + w.format * t.format;
  }
  return t;
}

}  // namespace bkd

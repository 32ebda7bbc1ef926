#include "torch/train/batch.h"

#include <algorithm>

#include "core/util/error.h"

namespace bkd {

Batch Batch::to(const torch::Device& d) const {
  Batch b = *this;
  auto mv = [&](torch::Tensor& t) {
    if (t.defined()) t = t.to(d);
  };
  mv(b.inputs), mv(b.targets), mv(b.loss_mask), mv(b.key_valid);
  mv(b.kd.ids), mv(b.kd.logprobs), mv(b.kd.other), mv(b.kd.valid);
  return b;
}

Batch make_lm_batch(const std::vector<std::vector<int32_t>>& seqs, int64_t T) {
  const int64_t B = int64_t(seqs.size());
  Batch b;
  b.inputs = torch::zeros({B, T}, torch::kLong);
  b.targets = torch::zeros({B, T}, torch::kLong);
  b.loss_mask = torch::zeros({B, T}, torch::kBool);
  b.key_valid = torch::zeros({B, T}, torch::kBool);
  auto in = b.inputs.accessor<int64_t, 2>(), tg = b.targets.accessor<int64_t, 2>();
  auto lm = b.loss_mask.accessor<bool, 2>(), kv = b.key_valid.accessor<bool, 2>();
  for (int64_t s = 0; s < B; ++s) {
    const auto& q = seqs[s];
    if (int64_t(q.size()) > T + 1)
      throw Error("sequence of " + std::to_string(q.size()) + " tokens does not fit a batch of length " +
                  std::to_string(T) + " (+1 for the last target)");
    const int64_t n = std::max<int64_t>(0, int64_t(q.size()) - 1);
    for (int64_t i = 0; i < int64_t(q.size()) && i < T; ++i) in[s][i] = q[i], kv[s][i] = true;
    for (int64_t i = 0; i < n; ++i) tg[s][i] = q[i + 1], lm[s][i] = true;
    b.tokens += std::min<int64_t>(int64_t(q.size()), T);
  }
  return b;
}

Batch make_kd_batch(const std::vector<std::vector<KdPosition>>& seqs, int64_t T, int64_t K) {
  std::vector<std::vector<int32_t>> toks;
  for (const auto& s : seqs) {
    std::vector<int32_t> t;
    for (const auto& p : s) t.push_back(p.token);
    toks.push_back(std::move(t));
  }
  Batch b = make_lm_batch(toks, T);
  const int64_t B = int64_t(seqs.size());
  b.kd.ids = torch::full({B, T, K}, -1, torch::kLong);
  b.kd.logprobs = torch::full({B, T, K}, -1e4f, torch::kFloat);
  b.kd.other = torch::zeros({B, T}, torch::kFloat);  // safe padding: P(other) = 1
  b.kd.valid = torch::zeros({B, T}, torch::kBool);
  auto ids = b.kd.ids.accessor<int64_t, 3>();
  auto lp = b.kd.logprobs.accessor<float, 3>();
  auto other = b.kd.other.accessor<float, 2>();
  auto valid = b.kd.valid.accessor<bool, 2>();
  for (int64_t s = 0; s < B; ++s) {
    const auto& rows = seqs[s];
    for (int64_t p = 1; p < int64_t(rows.size()) && p - 1 < T; ++p) {
      const KdPosition& r = rows[p];
      if (!r.valid) continue;
      if (r.ids.size() != r.logprobs.size())
        throw Error("KD row at position " + std::to_string(p) + " has " + std::to_string(r.ids.size()) +
                    " ids but " + std::to_string(r.logprobs.size()) + " logprobs");
      const int64_t i = p - 1;  // the logits that predict token p
      const int64_t k = std::min<int64_t>(K, int64_t(r.ids.size()));
      for (int64_t j = 0; j < k; ++j) ids[s][i][j] = r.ids[j], lp[s][i][j] = r.logprobs[j];
      other[s][i] = r.other;
      valid[s][i] = true;
    }
  }
  return b;
}

}  // namespace bkd

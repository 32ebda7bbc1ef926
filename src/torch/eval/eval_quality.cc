#include "torch/eval/eval_quality.h"

#include <algorithm>
#include <cmath>

#include "core/tokenizer/tokenizer.h"
#include "core/util/error.h"
#include "core/util/sysinfo.h"
#include "torch/train/losses.h"

namespace bkd {

double TextScore::bits_per_byte() const { return bytes ? nll_nats / std::log(2.0) / double(bytes) : 0.0; }
double TextScore::nats_per_token() const { return tokens ? nll_nats / double(tokens) : 0.0; }

std::vector<TokenNll> token_nlls(LoadedModel& m, const std::vector<int32_t>& ids, int64_t ctx, int64_t first) {
  if (ctx < 2) throw Error("token_nlls: a context of " + std::to_string(ctx) + " tokens scores nothing");
  if (first < 1) throw Error("token_nlls: token " + std::to_string(first) + " has nothing before it");
  const int64_t stride = ctx / 2, n = int64_t(ids.size());
  std::vector<TokenNll> out;
  int64_t next = first;  // the first token not scored yet
  for (int64_t a = 0; next < n; a += stride) {
    const int64_t b = std::min(n, a + ctx);
    if (b <= next) continue;
    std::vector<int32_t> w(ids.begin() + a, ids.begin() + b);
    torch::Tensor logp = torch::log_softmax(forward_logits(m, w).to(torch::kDouble), -1);  // [b-a, V]
    auto lp = logp.accessor<double, 2>();
    for (int64_t j = next; j < b; ++j) out.push_back({j, a, -lp[j - 1 - a][ids[size_t(j)]]});
    next = b;
  }
  return out;
}

TextScore score_texts(LoadedModel& m, const std::vector<ScoredText>& texts, const Tokenizer& tok, int32_t bos) {
  if (bos < 0 || bos >= m.vocab_size())
    throw Error("score_texts: start token " + std::to_string(bos) + " is outside the model's vocabulary");
  const int64_t ctx = m.config.max_seq_len, keep_before = std::max<int64_t>(1, ctx / 2);
  TextScore s;
  Timer t;
  torch::NoGradGuard ng;
  for (const auto& st : texts) {
    if (st.text.empty()) continue;
    const std::string joint = st.context + st.text;
    std::vector<int32_t> ids;
    if (st.context_from_doc_start) ids.push_back(bos);
    int64_t first = -1;  // the first token that covers a byte of the text
    for (const TokenSpan& sp : tok.encode(joint)) {
      if (first < 0 && sp.end > st.context.size()) first = int64_t(ids.size());
      ids.push_back(sp.id);
    }
    if (first < 0) continue;  // nothing of the text became a token
    if (first == 0)
      throw Error("score_texts: a text that does not start its document came without the text before it",
                  "pass the document text before it as context (held_out.h)");
    const int64_t drop = std::max<int64_t>(0, first - keep_before);  // at most half a context before the text
    ids.erase(ids.begin(), ids.begin() + drop);
    first -= drop;
    for (const TokenNll& n : token_nlls(m, ids, ctx, first)) s.nll_nats += n.nll;
    s.tokens += int64_t(ids.size()) - first;
    s.bytes += int64_t(st.text.size());
    ++s.texts;
  }
  if (!std::isfinite(s.nll_nats))
    throw Error("score_texts: the log-likelihood of " + m.checkpoint + " is not finite",
                "the checkpoint holds NaN/inf weights; check its health report and retrain");
  s.seconds = t.seconds();
  return s;
}

TextScore score_texts(LoadedModel& m, const std::vector<std::string>& texts, const Tokenizer& tok, int32_t bos) {
  std::vector<ScoredText> docs;
  for (const auto& text : texts) docs.push_back({"", text, true});
  return score_texts(m, docs, tok, bos);
}

KdAgreement kd_agreement(LoadedModel& m, const std::vector<std::vector<KdPosition>>& seqs, int64_t seq_len,
                         int64_t batch) {
  KdAgreement r;
  Timer t;
  torch::NoGradGuard ng;
  int64_t k = 1;
  for (const auto& q : seqs)
    for (const auto& p : q) k = std::max<int64_t>(k, int64_t(p.ids.size()));
  const int64_t T = std::min<int64_t>(seq_len, m.config.max_seq_len);
  for (size_t i = 0; i < seqs.size(); i += size_t(batch)) {
    std::vector<std::vector<KdPosition>> chunk;
    for (size_t j = i; j < std::min(seqs.size(), i + size_t(batch)); ++j) {
      if (int64_t(seqs[j].size()) > T + 1)
        throw Error("kd_agreement: a held-out sequence has " + std::to_string(seqs[j].size()) +
                    " rows, more than the window of " + std::to_string(T + 1));
      if (seqs[j].size() >= 2) chunk.push_back(seqs[j]);
    }
    if (chunk.empty()) continue;
    Batch b = make_kd_batch(chunk, T, k);
    torch::Tensor logits = m.model->forward(b.inputs, b.key_valid).to(torch::kFloat);  // [B, T, V]
    torch::Tensor valid = b.kd.valid & b.loss_mask;
    const int64_t n = valid.sum().item<int64_t>();
    if (n == 0) continue;
    const double kl = kd_loss(logits, b.kd.ids, b.kd.logprobs, b.kd.other, valid, 1.0).item<double>();
    r.kl_sum += kl * double(n);
    r.positions += n;
    torch::Tensor teacher_top = b.kd.ids.select(-1, 0);
    torch::Tensor has_top = valid & (teacher_top >= 0);
    r.top1_rows += has_top.sum().item<int64_t>();
    r.top1_agree += (has_top & (logits.argmax(-1) == teacher_top)).sum().item<int64_t>();
  }
  r.seconds = t.seconds();
  return r;
}

uint64_t model_bytes(LoadedModel& m) {
  uint64_t n = 0;
  for (const auto& p : m.model->parameters()) n += uint64_t(p.numel()) * uint64_t(p.element_size());
  for (const auto& b : m.model->buffers()) n += uint64_t(b.numel()) * uint64_t(b.element_size());
  return n;
}

}  // namespace bkd

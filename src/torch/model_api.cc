#include "torch/model_api.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/config/settings.h"
#include "core/data/layout.h"
#include "core/teacher/local_model.h"
#include "core/tokenizer/gpt2_bpe.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "torch/checkpoint.h"
#include "torch/trainer.h"

namespace bkd {

LoadedModel load_model(const std::string& checkpoint_dir) {
  keep_freed_memory();  // every forward allocates [T, vocab] logits: reuse the pages, no per-call page faults
  std::string ck = checkpoint_dir;
  if (!file_exists(join_path(ck, "state.json"))) {
    auto latest = latest_checkpoint(checkpoint_dir);
    if (!latest)
      throw Error("no checkpoint in " + checkpoint_dir,
                  "train one first (`bitnet-kde train --role student` or `--role teacher`)");
    ck = *latest;
  }
  LoadedModel m;
  m.checkpoint = ck;
  m.state = load_checkpoint_state(ck);
  m.config = m.state.at("model_config").get<ModelConfig>();
  m.mode = quant_mode_from_string(m.state.at("quant_mode").get<std::string>());
  if (m.state.contains("vocab_map")) m.vocab_map = VocabMap::from_json(m.state.at("vocab_map"));
  if (m.vocab_map.enabled() && m.vocab_map.model_vocab() != m.config.vocab_size)
    throw Error("checkpoint " + ck + ": the vocabulary map has " + std::to_string(m.vocab_map.model_vocab()) +
                    " classes but the model " + std::to_string(m.config.vocab_size),
                "the checkpoint is damaged; retrain it");
  m.model = Transformer(m.config, m.mode);
  load_model_weights(ck, m.model, false);
  m.model->eval();
  return m;
}

torch::Tensor forward_logits(LoadedModel& m, const std::vector<int32_t>& ids) {
  if (ids.empty()) throw Error("forward_logits: empty token sequence");
  if (int64_t(ids.size()) > m.config.max_seq_len)
    throw Error("forward_logits: " + std::to_string(ids.size()) + " tokens exceed the model's max_seq_len " +
                    std::to_string(m.config.max_seq_len),
                "score the text in windows");
  for (int32_t id : ids)
    if (id < 0 || id >= m.vocab_size())
      throw Error("forward_logits: token id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(m.vocab_size()));
  torch::NoGradGuard ng;
  torch::Tensor t = torch::tensor(std::vector<int64_t>(ids.begin(), ids.end()), torch::kLong).view({1, -1});
  torch::Tensor logits = m.model->forward(m.vocab_map.to_model(t)).select(0, 0).to(torch::kFloat);
  return m.vocab_map.expand_logits(logits).contiguous();
}

namespace {

// exp(x) for x <= 0, four floats at a time (GCC/Clang vector extensions, SSE2 on x86-64): 2^(x log2 e)
// split into the nearest integer power (added to the exponent bits) and 2^f, f in [-1/2, 1/2], by its
// Taylor series to degree 6 (relative error < 3e-7). Below -87 it returns 0 (or a value under 1e-37).
typedef float F4 __attribute__((vector_size(16)));
typedef int32_t I4 __attribute__((vector_size(16)));

inline F4 exp4_nonpositive(F4 x) {
  const F4 lo = {-87.0f, -87.0f, -87.0f, -87.0f};
  const I4 under = x < lo;
  const F4 xc = (F4)(((I4)x & ~under) | ((I4)lo & under));
  const F4 t = xc * 1.44269504088896341f;
  const F4 r = (t + 12582912.0f) - 12582912.0f;  // round to nearest (1.5 * 2^23 shifts the fraction out)
  const I4 i = __builtin_convertvector(r, I4);
  const F4 f = (t - r) * 0.693147180559945309f;  // |f| <= ln(2) / 2
  F4 p = f * 1.38888889e-3f + 8.33333333e-3f;
  p = p * f + 4.16666667e-2f;
  p = p * f + 1.66666667e-1f;
  p = p * f + 0.5f;
  p = p * f + 1.0f;
  p = p * f + 1.0f;
  const I4 bits = (I4)p + i * (1 << 23);
  return (F4)(bits & ~under);
}

inline float exp_nonpositive(float x) {
  const F4 v = {x, x, x, x};
  return exp4_nonpositive(v)[0];
}

// One row of logits -> top-K (value descending, lower id first on ties, as top_k_indices), the log
// normalizer, Other summed over the entries outside the top-K (exact also when the top-K holds nearly
// all the mass), and the log-prob and rank of `target`.
void score_row(const float* row, int64_t vocab, int64_t k, int32_t target, size_t r, TopKScores& out) {
  constexpr int64_t kBlock = 64;
  std::vector<std::pair<float, int32_t>> top;
  top.reserve(size_t(k) + 1);
  float thr = -INFINITY;  // the k-th best value once k are held
  for (int64_t v0 = 0; v0 < vocab; v0 += kBlock) {
    const int64_t v1 = std::min(vocab, v0 + kBlock);
    if (int64_t(top.size()) == k) {
      int any = 0;
      for (int64_t v = v0; v < v1; ++v) any |= row[v] > thr;
      if (!any) continue;
    }
    for (int64_t v = v0; v < v1; ++v) {
      const float x = row[v];
      if (int64_t(top.size()) == k && !(x > thr)) continue;
      auto at = std::upper_bound(top.begin(), top.end(), x, [](float a, const std::pair<float, int32_t>& b) { return a > b.first; });
      top.insert(at, {x, int32_t(v)});
      if (int64_t(top.size()) > k) top.pop_back();
      if (int64_t(top.size()) == k) thr = top.back().first;
    }
  }
  const float m = top.front().first, kth = top.back().first;
  // Sums four lanes at a time, added into double every 64 entries.
  double all = 0, rest = 0;
  int64_t at_or_above = 0, above = 0;
  const float tv = row[target];
  const F4 mv = {m, m, m, m}, kv = {kth, kth, kth, kth}, tvv = {tv, tv, tv, tv};
  const int64_t vec_end = vocab & ~int64_t(3);
  int64_t v = 0;
  while (v < vec_end) {
    F4 a4 = {0, 0, 0, 0}, r4 = {0, 0, 0, 0};
    I4 c4 = {0, 0, 0, 0}, g4 = {0, 0, 0, 0};
    const int64_t end = std::min(vec_end, v + kBlock);
    for (; v < end; v += 4) {
      F4 x;
      std::memcpy(&x, row + v, sizeof x);
      const F4 e = exp4_nonpositive(x - mv);
      a4 += e;
      r4 += (F4)((I4)e & (x < kv));
      c4 -= x >= kv;  // comparisons give -1 where true
      g4 -= x > tvv;
    }
    for (int j = 0; j < 4; ++j) all += a4[j], rest += r4[j], at_or_above += c4[j], above += g4[j];
  }
  for (; v < vocab; ++v) {
    const float x = row[v], e = exp_nonpositive(x - m);
    all += e;
    rest += x < kth ? e : 0.0f;
    at_or_above += x >= kth;
    above += x > tv;
  }
  if (at_or_above != k) {
    // Entries tied with the k-th value outside the top-K: Other by index, in double.
    std::vector<char> in_top(size_t(vocab), 0);
    for (const auto& t : top) in_top[size_t(t.second)] = 1;
    rest = 0;
    for (int64_t v = 0; v < vocab; ++v)
      if (!in_top[size_t(v)]) rest += std::exp(double(row[v]) - double(m));
  }
  const double log_s = std::log(all), log_z = double(m) + log_s;
  for (int64_t j = 0; j < k; ++j) {
    out.ids[r * size_t(k) + size_t(j)] = top[size_t(j)].second;
    out.logprobs[r * size_t(k) + size_t(j)] = double(top[size_t(j)].first) - log_z;
  }
  out.log_other[r] = std::log(rest) - log_s;  // -inf when the top-K holds all the mass
  out.next_logprob[r] = double(tv) - log_z;
  out.next_rank[r] = int32_t(above + 1);
}

class TorchTeacher : public LocalLanguageModel {
 public:
  TorchTeacher(LoadedModel m, std::unique_ptr<Gpt2Bpe> tok, std::string name)
      : m_(std::move(m)), tok_(std::move(tok)), name_(std::move(name)) {
    if (tok_->vocab_size() > m_.vocab_size())
      throw Error("teacher checkpoint " + m_.checkpoint + " has vocabulary " + std::to_string(m_.vocab_size()) +
                  " but the GPT-2 tokenizer has " + std::to_string(tok_->vocab_size()));
  }
  std::string name() const override { return name_; }
  const Tokenizer& tokenizer() const override { return *tok_; }
  int32_t vocab_size() const override { return int32_t(m_.vocab_size()); }
  int32_t eos_id() const override { return tok_->eos_id(); }
  int32_t max_context() const override { return int32_t(m_.config.max_seq_len); }
  std::vector<float> next_logits(const std::vector<int32_t>& context) override {
    torch::Tensor l = forward_logits(m_, context);
    torch::Tensor last = l.select(0, l.size(0) - 1).contiguous();
    return std::vector<float>(last.data_ptr<float>(), last.data_ptr<float>() + last.numel());
  }
  std::vector<std::vector<float>> sequence_logits(const std::vector<int32_t>& tokens) override {
    if (int64_t(tokens.size()) > m_.config.max_seq_len) return LocalLanguageModel::sequence_logits(tokens);
    torch::Tensor l = forward_logits(m_, tokens);
    std::vector<std::vector<float>> rows(size_t(l.size(0)));
    for (int64_t i = 0; i < l.size(0); ++i) {
      const float* p = l[i].data_ptr<float>();
      rows[size_t(i)].assign(p, p + l.size(1));
    }
    return rows;
  }
  // Softmax statistics, top-K, exact Other and the next token's rank straight from the [T, V] logits,
  // rows in parallel on LibTorch's intra-op pool: two passes over each row (top-K scan with a block
  // skip, then one exp per entry), no [T, V] temporaries.
  bool score_top_k(const std::vector<int32_t>& tokens, int k, TopKScores& out) override {
    if (tokens.size() < 2 || int64_t(tokens.size()) > m_.config.max_seq_len || k <= 0) return false;
    torch::NoGradGuard ng;
    torch::Tensor l = forward_logits(m_, tokens).contiguous();  // row i predicts tokens[i + 1]
    const int64_t rows = l.size(0) - 1, vocab = l.size(1);
    const int64_t kk = std::min<int64_t>(k, vocab);
    out.k = int(kk);
    out.ids.assign(size_t(rows * kk), 0);
    out.logprobs.assign(size_t(rows * kk), 0.0);
    out.log_other.assign(size_t(rows), 0.0);
    out.next_logprob.assign(size_t(rows), 0.0);
    out.next_rank.assign(size_t(rows), 0);
    const float* base = l.data_ptr<float>();
    at::parallel_for(0, rows, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) score_row(base + i * vocab, vocab, kk, tokens[size_t(i + 1)], size_t(i), out);
    });
    return true;
  }

 private:
  LoadedModel m_;
  std::unique_ptr<Gpt2Bpe> tok_;
  std::string name_;
};
}  // namespace

std::unique_ptr<LocalLanguageModel> make_torch_teacher(const Settings& s, const std::string& model_name) {
  const std::string dir = join_path(s.str("CKPT_DIR"), "teacher");
  if (!latest_checkpoint(dir)) return nullptr;
  LoadedModel m = load_model(dir);
  auto tok = Gpt2Bpe::load(gpt2_encoder_json_path(s), gpt2_vocab_bpe_path(s));
  return std::make_unique<TorchTeacher>(std::move(m), std::move(tok), model_name);
}

}  // namespace bkd

#include "core/teacher/local_provider.h"

#include <cmath>

#include "core/teacher/logprob_math.h"
#include "core/teacher/token_text.h"
#include "core/util/error.h"
#include "core/util/sysinfo.h"

namespace bkd {

LocalProvider::LocalProvider(std::shared_ptr<LocalLanguageModel> model) : model_(std::move(model)) {
  if (!model_) throw Error("local provider needs a model");
}

std::string LocalProvider::model() const { return model_->name(); }

const std::string& LocalProvider::token_bytes(int32_t id) {
  std::lock_guard<std::mutex> lock(bytes_mu_);
  if (id < 0) throw Error("local model returned token id " + std::to_string(id));
  if (static_cast<size_t>(id) >= bytes_.size()) bytes_.resize(static_cast<size_t>(id) + 1);
  auto& b = bytes_[static_cast<size_t>(id)];
  if (!b) b = std::make_unique<std::string>(model_->tokenizer().continuation_bytes(id));
  return *b;
}

GeneratedToken LocalProvider::unpredicted_token(int32_t id) const {
  GeneratedToken t;
  t.id = id;
  t.bytes = model_->tokenizer().decode({id});
  t.text = token_display_text(t.bytes);
  return t;
}

GeneratedToken LocalProvider::scored_token(int32_t id, double logprob, int32_t rank) {
  GeneratedToken t;
  t.id = id;
  t.bytes = token_bytes(id);
  t.text = token_display_text(t.bytes);
  t.logprob = logprob;
  t.rank = rank;
  return t;
}

std::vector<std::vector<float>> LocalProvider::sequence_logits(const std::vector<int32_t>& ids) {
  std::vector<std::vector<float>> rows;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rows = model_->sequence_logits(ids);
  }
  if (rows.size() != ids.size())
    throw Error("local model returned " + std::to_string(rows.size()) + " logit rows for " +
                std::to_string(ids.size()) + " tokens");
  return rows;
}

Capabilities LocalProvider::capabilities() {
  Capabilities c;
  c.logprobs = true;
  c.max_top_k = model_->vocab_size();
  c.token_ids = true;
  c.scoring = true;
  c.sampled_scoring = true;
  c.source = "static";
  c.probed_at = iso8601_utc_now();
  c.note = "in-process model: exact top-K and Other from the full softmax";
  return c;
}

GeneratedToken LocalProvider::make_token(int32_t id, const std::vector<double>& lp, int top_k) const {
  const Tokenizer& tok = model_->tokenizer();
  GeneratedToken t;
  t.id = id;
  t.bytes = tok.continuation_bytes(id);
  t.text = token_display_text(t.bytes);
  t.logprob = lp[id];
  t.rank = 1;
  for (double v : lp) t.rank += v > lp[id];
  if (top_k > 0) {
    auto idx = top_k_indices(lp, top_k);
    for (int32_t j : idx) {
      TokenCandidate c;
      c.id = j;
      c.bytes = tok.continuation_bytes(j);
      c.text = token_display_text(c.bytes);
      c.logprob = lp[j];
      t.top.push_back(std::move(c));
    }
    t.log_other = log_other_exact(lp, idx);
  }
  return t;
}

Generation LocalProvider::generate(const GenerateRequest& req) {
  Timer timer;
  const Tokenizer& tok = model_->tokenizer();
  std::vector<int32_t> ctx = tok.encode_ids(req.prompt);
  Generation g;
  g.usage.prompt_tokens = static_cast<int64_t>(ctx.size());
  if (ctx.empty()) ctx.push_back(model_->eos_id());  // an empty prompt starts from end-of-text
  SeededUniform rng(req.seed);
  const size_t max_ctx = model_->max_context() > 0 ? static_cast<size_t>(model_->max_context()) : 0;
  g.finish_reason = "length";
  std::lock_guard<std::mutex> lock(mu_);
  for (int step = 0; step < req.max_tokens; ++step) {
    std::vector<int32_t> window =
        max_ctx && ctx.size() > max_ctx ? std::vector<int32_t>(ctx.end() - max_ctx, ctx.end()) : ctx;
    std::vector<float> logits = model_->next_logits(window);
    if (static_cast<int32_t>(logits.size()) != model_->vocab_size())
      throw Error("local model returned " + std::to_string(logits.size()) + " logits, expected vocab size " +
                  std::to_string(model_->vocab_size()));
    std::vector<double> lp = log_softmax(logits, 1.0);
    int32_t id;
    if (req.temperature <= 0) {
      id = top_k_indices(lp, 1)[0];
    } else {
      std::vector<double> lpt = log_softmax(logits, req.temperature);
      double u = rng.next(), acc = 0;
      id = static_cast<int32_t>(lpt.size()) - 1;
      for (size_t j = 0; j < lpt.size(); ++j) {
        acc += std::exp(lpt[j]);
        if (u < acc) {
          id = static_cast<int32_t>(j);
          break;
        }
      }
    }
    if (step == 0) g.ttft_s = timer.seconds();
    if (id == model_->eos_id()) {
      g.finish_reason = "stop";
      break;
    }
    g.tokens.push_back(make_token(id, lp, req.top_k));
    g.text += g.tokens.back().bytes;
    if (req.on_token) req.on_token(g.tokens.back());
    ctx.push_back(id);
  }
  g.usage.completion_tokens = static_cast<int64_t>(g.tokens.size());
  g.usage.total_tokens = g.usage.prompt_tokens + g.usage.completion_tokens;
  g.latency_s = timer.seconds();
  return g;
}

Scoring LocalProvider::score(const std::string& text, int top_k) {
  Timer timer;
  std::vector<int32_t> ids = model_->tokenizer().encode_ids(text);
  Scoring s;
  if (ids.empty()) return s;
  TopKScores fast;
  bool have_fast;
  {
    std::lock_guard<std::mutex> lock(mu_);
    have_fast = top_k > 0 && model_->score_top_k(ids, top_k, fast);
  }
  if (have_fast) {
    const size_t rows = ids.size() - 1, k = static_cast<size_t>(fast.k);
    if (fast.ids.size() != rows * k || fast.logprobs.size() != rows * k || fast.log_other.size() != rows ||
        fast.next_logprob.size() != rows || fast.next_rank.size() != rows)
      throw Error("local model's top-K scores do not match the " + std::to_string(ids.size()) + " tokens scored");
    s.tokens.reserve(ids.size());
    s.tokens.push_back(unpredicted_token(ids[0]));
    for (size_t i = 0; i < rows; ++i) {
      GeneratedToken t = scored_token(ids[i + 1], fast.next_logprob[i], fast.next_rank[i]);
      t.top.resize(k);
      for (size_t j = 0; j < k; ++j) {
        TokenCandidate& c = t.top[j];
        c.id = fast.ids[i * k + j];
        c.bytes = token_bytes(c.id);
        c.text = token_display_text(c.bytes);
        c.logprob = fast.logprobs[i * k + j];
      }
      t.log_other = fast.log_other[i];
      s.tokens.push_back(std::move(t));
    }
    s.latency_s = timer.seconds();
    return s;
  }
  const std::vector<std::vector<float>> rows = sequence_logits(ids);
  s.tokens.push_back(unpredicted_token(ids[0]));
  for (size_t i = 1; i < ids.size(); ++i) s.tokens.push_back(make_token(ids[i], log_softmax(rows[i - 1], 1.0), top_k));
  s.latency_s = timer.seconds();
  return s;
}

Scoring LocalProvider::score_sampled(const std::string& text, int draws, uint64_t seed) {
  if (draws < 1) throw UsageError("sampled scoring needs at least one draw per position, not " + std::to_string(draws));
  Timer timer;
  const std::vector<int32_t> ids = model_->tokenizer().encode_ids(text);
  Scoring s;
  if (ids.empty()) return s;
  SampledScores fast;
  bool have_fast;
  {
    std::lock_guard<std::mutex> lock(mu_);
    have_fast = ids.size() >= 2 && model_->score_samples(ids, draws, seed, fast);
  }
  if (!have_fast) {  // the reference: the full distribution in double precision, drawn as draws.h defines
    const std::vector<std::vector<float>> rows = sequence_logits(ids);
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      const std::vector<double> lp = log_softmax(rows[i], 1.0);
      std::vector<double> p(lp.size());
      for (size_t j = 0; j < lp.size(); ++j) p[j] = std::exp(lp[j]);
      SeededUniform rng(row_seed(seed, i));
      fast.rows.push_back(draw_counts(p.data(), int64_t(p.size()), draws, rng));
      const double next = lp[size_t(ids[i + 1])];
      int32_t rank = 1;
      for (double v : lp) rank += v > next;
      fast.next_logprob.push_back(next);
      fast.next_rank.push_back(rank);
    }
  }
  const size_t n = ids.size() - 1;
  if (fast.rows.size() != n || fast.next_logprob.size() != n || fast.next_rank.size() != n)
    throw Error("local model's sampled scores do not match the " + std::to_string(ids.size()) + " tokens scored");
  s.tokens.push_back(unpredicted_token(ids[0]));
  for (size_t i = 0; i < n; ++i) {
    GeneratedToken t = scored_token(ids[i + 1], fast.next_logprob[i], fast.next_rank[i]);
    for (const auto& [id, count] : fast.rows[i]) {
      TokenCandidate c;
      c.id = id;
      c.bytes = token_bytes(id);
      c.text = token_display_text(c.bytes);
      c.logprob = std::log(double(count) / double(draws));
      t.top.push_back(std::move(c));
    }
    t.log_other = -INFINITY;  // the draws are the whole (estimated) distribution
    s.tokens.push_back(std::move(t));
  }
  s.latency_s = timer.seconds();
  return s;
}

}  // namespace bkd

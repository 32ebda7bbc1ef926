// eval's quality measures against closed forms: a model with all-zero weights predicts the uniform
// distribution, so its bits per byte and its KL to any teacher distribution are known exactly; and a
// random-weight model checks the windows, targets and start token against direct forwards.
#include "torch/eval/eval_quality.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/tokenizer/tokenizer.h"
#include "core/util/error.h"

namespace bkd {
namespace {

// Byte-level tokenizer: one token per byte (ids 0..255), 256 = start of text.
class ByteTokenizer : public Tokenizer {
 public:
  std::string kind() const override { return "bytes"; }
  std::vector<TokenSpan> encode(std::string_view text) const override {
    std::vector<TokenSpan> out;
    for (size_t i = 0; i < text.size(); ++i) out.push_back({int32_t(uint8_t(text[i])), uint32_t(i), uint32_t(i + 1)});
    return out;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string s;
    for (int32_t i : ids) s += char(i);
    return s;
  }
  std::string piece(int32_t id) const override { return std::string(1, char(id)); }
  int32_t vocab_size() const override { return 257; }
  int32_t eos_id() const override { return 256; }
  std::string hash() const override { return "bytes"; }
};

LoadedModel uniform_model(int64_t vocab, int64_t max_len, QuantMode mode = QuantMode::FullPrecision) {
  LoadedModel m;
  m.config.vocab_size = vocab, m.config.d_model = 32, m.config.n_layers = 1, m.config.n_heads = 4, m.config.n_kv_heads = 4;
  m.config.ffn_dim = 48, m.config.max_seq_len = max_len, m.config.bitlinear = mode != QuantMode::FullPrecision;
  m.mode = mode;
  m.model = Transformer(m.config, mode);
  torch::NoGradGuard ng;
  for (auto& p : m.model->parameters()) p.zero_();
  m.model->eval();
  return m;
}

TEST(EvalQuality, BitsPerByteOfAUniformModelIsLog2OfTheVocabularyPerToken) {
  ByteTokenizer tok;
  LoadedModel m = uniform_model(257, 16);
  // 3 texts, one longer than the context (40 tokens + start > 16): scored in overlapping windows.
  const std::vector<std::string> texts = {"hello", std::string(40, 'x'), "", "abc d"};
  const TextScore s = score_texts(m, texts, tok, tok.eos_id());
  EXPECT_EQ(s.tokens, 5 + 40 + 5);
  EXPECT_EQ(s.bytes, 50);
  EXPECT_EQ(s.texts, 3);
  EXPECT_NEAR(s.nll_nats, 50 * std::log(257.0), 1e-6 * 50 * std::log(257.0));
  EXPECT_NEAR(s.bits_per_byte(), std::log2(257.0), 1e-6);  // one byte per token here
  EXPECT_NEAR(s.nats_per_token(), std::log(257.0), 1e-6);
}

// Random weights (seeded): every token's probability depends on its context, so a wrong target row,
// a missing start token or a short window changes the numbers.
LoadedModel random_model(int64_t vocab, int64_t max_len) {
  torch::manual_seed(17);
  LoadedModel m;
  m.config.vocab_size = vocab, m.config.d_model = 32, m.config.n_layers = 2, m.config.n_heads = 4, m.config.n_kv_heads = 4;
  m.config.ffn_dim = 48, m.config.max_seq_len = max_len, m.config.bitlinear = false;
  m.mode = QuantMode::FullPrecision;
  m.model = Transformer(m.config, QuantMode::FullPrecision);
  torch::NoGradGuard ng;
  for (auto& p : m.model->parameters()) p.normal_(0.0, 0.3);
  m.model->eval();
  return m;
}

// -log p(ids[pos] | ids[start .. pos)) from one forward over exactly that context, float64 softmax.
double direct_nll(LoadedModel& m, const std::vector<int32_t>& ids, int64_t start, int64_t pos) {
  torch::NoGradGuard ng;
  std::vector<int32_t> ctx(ids.begin() + start, ids.begin() + pos);
  torch::Tensor lp = torch::log_softmax(forward_logits(m, ctx).to(torch::kDouble), -1);
  return -lp[int64_t(ctx.size()) - 1][ids[size_t(pos)]].item<double>();
}

TEST(EvalQuality, SlidingWindowsScoreEveryTokenOnceWithEnoughContextNeverBeyondTheModels) {
  const int64_t V = 40, ctx = 16;
  LoadedModel m = random_model(V, ctx);
  std::vector<int32_t> ids;
  for (int i = 0; i < 61; ++i) ids.push_back(int32_t((i * 7 + i / 5) % V));
  torch::NoGradGuard ng;
  const auto nlls = token_nlls(m, ids, ctx);
  ASSERT_EQ(nlls.size(), ids.size() - 1);
  for (size_t k = 0; k < nlls.size(); ++k) {
    const TokenNll& t = nlls[k];
    ASSERT_EQ(t.pos, int64_t(k) + 1);  // each token once, in order, the first (the start token) never
    EXPECT_LE(t.pos - t.context_start + 1, ctx) << t.pos;                    // the window fits the model
    EXPECT_GE(t.pos - t.context_start, std::min<int64_t>(t.pos, ctx / 2)) << t.pos;  // and sees enough
    // Bound: the same logits row computed in a longer window differs by float32 summation order only:
    // |logit| < 10 here, each a sum of 32-term dot products, ~1e-6 relative; the log-softmax moves by
    // at most twice the largest logit error. 1e-4 nats is far above that and far below what a wrong row
    // or context gives (the random model's NLLs differ by > 0.1 between neighbouring contexts).
    EXPECT_NEAR(t.nll, direct_nll(m, ids, t.context_start, t.pos), 1e-4) << t.pos;
  }
  // Inside the first window every token sees the whole prefix.
  for (int64_t j = 1; j < ctx; ++j) EXPECT_EQ(nlls[size_t(j - 1)].context_start, 0);
}

TEST(EvalQuality, TheFirstTokenIsPredictedFromTheStartTokenAlone) {
  ByteTokenizer tok;
  LoadedModel m = random_model(257, 32);
  const TextScore s = score_texts(m, {"abc"}, tok, tok.eos_id());
  const std::vector<int32_t> ids = {256, 'a', 'b', 'c'};
  torch::NoGradGuard ng;
  const double want = direct_nll(m, ids, 0, 1) + direct_nll(m, ids, 0, 2) + direct_nll(m, ids, 0, 3);
  EXPECT_NEAR(s.nll_nats, want, 1e-4);
  EXPECT_EQ(s.tokens, 3);
  // Another start token gives another score: the start token is really in the context.
  EXPECT_GT(std::fabs(score_texts(m, {"abc"}, tok, 0).nll_nats - s.nll_nats), 1e-3);
}

// A held-out chunk is scored as the continuation of its document: after end-of-text and the text
// before it when that fits in half the model's context, after the last half-context of it otherwise;
// only the chunk's tokens count. Dropping the context, the start token or shifting the first scored
// token changes the sum by far more than the 1e-4 allowed (float32 row differences, as above).
TEST(EvalQuality, AChunkIsScoredAfterTheDocumentTextBeforeIt) {
  ByteTokenizer tok;
  LoadedModel m = random_model(257, 32);  // keeps up to 16 tokens before the chunk
  const std::string doc = "the quick brown fox jumps over the lazy dog again";
  auto ids_of = [](const std::string& t, bool bos) {
    std::vector<int32_t> ids;
    if (bos) ids.push_back(256);
    for (unsigned char c : t) ids.push_back(c);
    return ids;
  };
  torch::NoGradGuard ng;
  {  // near the document's start: end-of-text + 10 bytes of context, all kept
    const ScoredText st{doc.substr(0, 10), doc.substr(10, 10), true};
    const TextScore s = score_texts(m, std::vector<ScoredText>{st}, tok, tok.eos_id());
    const auto full = ids_of(doc.substr(0, 20), true);
    double want = 0;
    for (int64_t pos = 11; pos <= 20; ++pos) want += direct_nll(m, full, 0, pos);
    EXPECT_NEAR(s.nll_nats, want, 1e-4);
    EXPECT_EQ(s.tokens, 10);
    EXPECT_EQ(s.bytes, 10);
    EXPECT_GT(std::fabs(score_texts(m, {doc.substr(10, 10)}, tok, tok.eos_id()).nll_nats - want), 1e-3);
  }
  {  // far from it: 30 bytes of context, of which the last 16 tokens are kept, no start token
    const ScoredText st{doc.substr(0, 30), doc.substr(30, 10), false};
    const TextScore s = score_texts(m, std::vector<ScoredText>{st}, tok, tok.eos_id());
    const auto full = ids_of(doc.substr(0, 40), false);
    double want = 0;
    for (int64_t pos = 30; pos < 40; ++pos) want += direct_nll(m, full, 14, pos);
    EXPECT_NEAR(s.nll_nats, want, 1e-4);
    EXPECT_EQ(s.tokens, 10);
  }
  // A chunk inside a document without its context cannot be scored fairly: an error, not a guess.
  EXPECT_THROW(score_texts(m, std::vector<ScoredText>{{"", "abc", false}}, tok, tok.eos_id()), Error);
}

TEST(EvalQuality, StartTokenOutsideTheVocabularyIsAnError) {
  ByteTokenizer tok;
  LoadedModel m = uniform_model(100, 16);
  EXPECT_THROW(score_texts(m, {"a"}, tok, 256), std::exception);
}

TEST(EvalQuality, KlAndTop1AgainstAUniformStudentMatchTheClosedForm) {
  const int64_t V = 50;
  LoadedModel m = uniform_model(V, 8, QuantMode::TernaryA8);
  // Teacher rows: top-2 ids {3, 7} with p = 0.5, 0.3 and Other 0.2; one invalid row; one row with all mass in Other.
  auto row = [](int32_t tok, bool valid, std::vector<int32_t> ids, std::vector<float> lp, float other) {
    KdPosition p;
    p.token = tok, p.valid = valid, p.ids = std::move(ids), p.logprobs = std::move(lp), p.other = other;
    return p;
  };
  const float l5 = std::log(0.5f), l3 = std::log(0.3f), l2 = std::log(0.2f);
  std::vector<std::vector<KdPosition>> seqs = {
      {row(1, false, {}, {}, 0), row(3, true, {3, 7}, {l5, l3}, l2), row(4, true, {3, 7}, {l5, l3}, l2),
       row(5, false, {}, {}, 0), row(6, true, {}, {}, 0.0f)},
      {row(2, false, {}, {}, 0), row(7, true, {7, 3}, {l5, l3}, l2)}};
  const KdAgreement a = kd_agreement(m, seqs, 8, 2);
  EXPECT_EQ(a.positions, 4);  // rows 1, 2, 4 of the first sequence and row 1 of the second
  EXPECT_EQ(a.top1_rows, 3);  // the all-Other row has no teacher top-1 token
  // Uniform student: q = 1/V per id, Other = (V - 2)/V.
  const double kl_row = 0.5 * std::log(0.5 * V) + 0.3 * std::log(0.3 * V) + 0.2 * std::log(0.2 * V / (V - 2));
  const double kl_other_only = std::log(1.0 / 1.0);  // teacher all-Other vs student Other = 1: KL 0
  EXPECT_NEAR(a.kl(), (3 * kl_row + kl_other_only) / 4, 1e-4);
  // A uniform student's argmax is id 0, never the teacher's top-1 here.
  EXPECT_EQ(a.top1_agree, 0);
}

TEST(EvalQuality, ModelBytesCountsParametersAsLoaded) {
  LoadedModel m = uniform_model(64, 8);
  // float32 parameters + the RoPE cos/sin tables ([max_len, head_dim / 2] each).
  const uint64_t rope = 2u * uint64_t(m.config.max_seq_len) * uint64_t(m.config.head_dim() / 2) * 4u;
  EXPECT_EQ(model_bytes(m), uint64_t(m.config.parameter_count()) * 4u + rope);
}

}  // namespace
}  // namespace bkd

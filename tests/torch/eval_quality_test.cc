// eval's quality measures against closed forms: a model with all-zero weights predicts the uniform
// distribution, so its bits per byte and its KL to any teacher distribution are known exactly.
#include "torch/eval/eval_quality.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/tokenizer/tokenizer.h"

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

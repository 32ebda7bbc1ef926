#pragma once
// A small deterministic LocalLanguageModel for tests (a legitimate test double): byte-level
// tokens (ids 0..255 are bytes, 256 is end-of-text) and a fixed bigram table of logits, so every
// distribution is known in closed form and independent of the code under test.
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/teacher/local_model.h"
#include "core/tokenizer/tokenizer.h"

namespace bkd::testing {

class ByteTokenizer : public Tokenizer {
 public:
  std::string kind() const override { return "bytes"; }
  std::vector<TokenSpan> encode(std::string_view text) const override {
    std::vector<TokenSpan> out;
    for (uint32_t i = 0; i < text.size(); ++i) out.push_back({static_cast<unsigned char>(text[i]), i, i + 1});
    return out;
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    std::string s;
    for (int32_t id : ids)
      if (id >= 0 && id < 256) s.push_back(static_cast<char>(id));
    return s;
  }
  std::string piece(int32_t id) const override { return id == 256 ? "<eos>" : decode({id}); }
  int32_t vocab_size() const override { return 257; }
  int32_t eos_id() const override { return 256; }
  std::string hash() const override { return "bytes-v1"; }
};

// logits[next] = f(prev, next): favours lower-case letters and spaces, gives UTF-8 lead/continuation
// bytes some mass (so byte-split characters show up), and end-of-text a prev-dependent chance.
inline float bigram_logit(int32_t prev, int32_t next) {
  if (next == 256) return prev == '.' ? 12.0f : -2.0f;
  float base = ((prev * 131 + next * 197) % 251) / 40.0f;  // 0 .. 6.25, pseudo-random
  if ((next >= 'a' && next <= 'z') || next == ' ') base += 2.0f;
  else if (next >= 0x80) base -= 1.0f;
  else if (next < 32) base -= 6.0f;
  return base;
}

class BigramModel : public LocalLanguageModel {
 public:
  explicit BigramModel(int32_t max_context = 0, std::string name = "bigram-test")
      : max_context_(max_context), name_(std::move(name)) {}
  std::string name() const override { return name_; }
  const Tokenizer& tokenizer() const override { return tok_; }
  int32_t vocab_size() const override { return 257; }
  int32_t eos_id() const override { return 256; }
  int32_t max_context() const override { return max_context_; }
  std::vector<float> next_logits(const std::vector<int32_t>& context) override {
    if (context.empty()) throw std::runtime_error("empty context");
    if (max_context_ > 0 && static_cast<int32_t>(context.size()) > max_context_)
      throw std::runtime_error("context longer than max_context");
    ++calls;
    std::vector<float> l(257);
    for (int32_t j = 0; j < 257; ++j) l[j] = bigram_logit(context.back(), j);
    return l;
  }
  int calls = 0;

 private:
  ByteTokenizer tok_;
  int32_t max_context_;
  std::string name_;
};

// Reference log-softmax of the bigram row, computed independently of core/teacher/logprob_math.
inline std::vector<double> reference_logprobs(int32_t prev) {
  std::vector<double> v(257);
  double m = -1e300;
  for (int j = 0; j < 257; ++j) m = std::max(m, v[j] = bigram_logit(prev, j));
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  for (double& x : v) x = x - m - std::log(s);
  return v;
}

}  // namespace bkd::testing

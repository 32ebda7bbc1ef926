#include "core/engine/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/engine/engine.h"
#include "core/util/error.h"

namespace bkd {

int32_t argmax(const float* logits, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return static_cast<int32_t>(best);
}

int32_t Sampler::sample(const float* logits, int64_t vocab) {
  if (opts_.temperature <= 0.0) return argmax(logits, vocab);
  scratch_.resize(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i) scratch_[i] = {logits[i], static_cast<int32_t>(i)};
  int64_t n = vocab;
  if (opts_.top_k > 0 && opts_.top_k < vocab) {
    n = opts_.top_k;
    std::partial_sort(scratch_.begin(), scratch_.begin() + n, scratch_.end(),
                      [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  }
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, scratch_[i].first);
  double total = 0;
  std::vector<double> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) total += p[i] = std::exp((scratch_[i].first - mx) / opts_.temperature);
  double r = std::uniform_real_distribution<double>(0.0, total)(rng_);
  for (int64_t i = 0; i < n; ++i) {
    r -= p[i];
    if (r < 0) return scratch_[i].second;
  }
  return scratch_[n - 1].second;
}

std::vector<int32_t> generate(Engine& engine, const std::vector<int32_t>& prompt, int64_t max_new, Sampler& sampler,
                              int32_t stop_token) {
  if (prompt.empty()) throw Error("generate needs a non-empty prompt");
  const int64_t V = engine.config().vocab_size;
  std::vector<float> logits(static_cast<size_t>(V));
  engine.forward(prompt.data(), static_cast<int64_t>(prompt.size()), logits.data());
  std::vector<int32_t> out;
  for (int64_t i = 0; i < max_new; ++i) {
    const int32_t t = sampler.sample(logits.data(), V);
    out.push_back(t);
    if (t == stop_token || i + 1 == max_new || engine.position() >= engine.max_seq_len()) break;
    engine.forward(&t, 1, logits.data());
  }
  return out;
}

}  // namespace bkd

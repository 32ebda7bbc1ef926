#pragma once
// Next-token choice from logits: greedy (temperature 0) or sampling from softmax(logits / T),
// optionally restricted to the top_k most likely tokens. Seeded, so runs are reproducible.
#include <cstdint>
#include <random>
#include <vector>

namespace bkd {

struct SamplerOptions {
  double temperature = 0.0;  // 0: greedy
  int64_t top_k = 0;         // 0: the whole vocabulary
  uint64_t seed = 42;
};

class Sampler {
 public:
  explicit Sampler(SamplerOptions o = {}) : opts_(o), rng_(o.seed) {}
  int32_t sample(const float* logits, int64_t vocab);

 private:
  SamplerOptions opts_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int32_t>> scratch_;
};

int32_t argmax(const float* logits, int64_t n);  // first index of the maximum

class Engine;
// Feeds prompt, then samples up to max_new tokens (stops early after stop_token if >= 0).
std::vector<int32_t> generate(Engine& engine, const std::vector<int32_t>& prompt, int64_t max_new, Sampler& sampler,
                              int32_t stop_token = -1);

}  // namespace bkd

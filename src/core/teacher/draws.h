#pragma once
// Seeded draws from a teacher's distribution: the one definition of sampled KD's draws (RS-KD,
// arXiv 2503.16870), shared by the local provider's reference path and the LibTorch teacher.
// A row's draws are `draws` uniforms from SeededUniform(row_seed(seed, row)), sorted, each mapped to
// a class by the inverse of the cumulative distribution in class order. Same seed, same counts, on
// any machine (double precision throughout; the standard library's distributions are not portable).
#include <cstdint>
#include <utility>
#include <vector>

namespace bkd {

// Deterministic uniform [0,1) stream for seeded sampling (splitmix64): same seed, same numbers.
class SeededUniform {
 public:
  explicit SeededUniform(uint64_t seed) : state_(seed) {}
  double next();

 private:
  uint64_t state_;
};

// The seed of row `row` of a sequence scored with `seed`: rows get unrelated streams.
uint64_t row_seed(uint64_t seed, uint64_t row);

// (class, count) for `draws` draws from probabilities p[0..n) (non-negative; normalized here by their
// sum, so rounding in a softmax does not bias the last class), most frequent first, lower class first
// on ties. Throws bkd::Error when the row has no positive finite mass.
std::vector<std::pair<int32_t, int32_t>> draw_counts(const double* p, int64_t n, int draws, SeededUniform& rng);

}  // namespace bkd

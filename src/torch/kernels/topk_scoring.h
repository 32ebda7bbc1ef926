#pragma once
// Softmax statistics of one row of model logits over the external vocabulary, without expanding it:
// top-K (value descending, lower id first on ties, as core's top_k_indices), the log normalizer,
// Other (the mass outside the top-K: the total minus the top-K's, or summed entry by entry in a second
// pass where the top-K holds over 99% and the difference would lose digits) and the log-prob and rank
// of the next token. One pass over the row in the common case.
//
// A trimmed teacher head (VocabMap) predicts `kept` classes that are external ids of their own plus
// one rare class shared by `rare_count` external ids, each at the rare logit - log(rare_count).
// Scoring the M model classes instead of the 50257 expanded logits is the same distribution and
// ~3x less work for the cpu preset's teacher. The reference is core's double-precision path over the
// expanded row (log_softmax, top_k_indices, log_other_exact), which the tests compare against.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bkd {

struct TopKScores;

// How a row of model logits maps onto the external vocabulary.
struct RowClasses {
  int64_t kept = 0;                  // classes 0..kept-1 stand for one external id each
  const int32_t* kept_ids = nullptr; // their external ids, ascending; nullptr: class c is id c
  int64_t rare_count = 0;            // external ids sharing class `kept`; 0: no rare class
  const int32_t* rare_ids = nullptr; // those ids, ascending (at least min(k, rare_count) of them)
  float log_rare_count = 0.0f;       // float(log(rare_count)), as the expansion subtracts it
};

// Fills row r of `out` (already sized rows x k) from `row` (kept + (rare_count > 0) floats).
// `target_class` is the next token's model class. Needs 1 <= k <= the external vocabulary.
// `kernel` picks the passes over the row by name (tests); nullptr takes the best this CPU runs.
void score_row(const float* row, const RowClasses& c, int64_t k, int32_t target_class, size_t r, TopKScores& out,
               const char* kernel = nullptr);

// Names of the row kernels this CPU can run ("sse2", "avx2", "avx512"), widest last.
std::vector<std::string> runnable_row_kernels();

}  // namespace bkd

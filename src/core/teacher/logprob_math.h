#pragma once
// Log-space arithmetic for teacher distributions: log-softmax, exact top-K with the "Other" bucket
// from a full distribution, and Other from a provider's top-K alone.
#include <cstdint>
#include <vector>

namespace bkd {

// log(sum(exp(x))) computed stably; -inf for an empty input.
double logsumexp(const std::vector<double>& x);

// log_softmax(logits / temperature) in double precision. temperature <= 0 is treated as 1.
std::vector<double> log_softmax(const std::vector<float>& logits, double temperature = 1.0);

// Indices of the k largest values, largest first; ties broken by the lower index (deterministic).
std::vector<int32_t> top_k_indices(const std::vector<double>& values, int k);

// Other = 1 - sum(exp(topk)) in log space: log(-expm1(logsumexp(topk))), with logsumexp clamped just
// below 0 (1e-7) so rounding in the provider's values never gives log(0) or NaN.
double log_other_from_topk(const std::vector<double>& topk_logprobs);

// Exact Other from a full log-distribution: logsumexp over every entry not in `excluded`.
double log_other_exact(const std::vector<double>& logprobs, const std::vector<int32_t>& excluded);

// OpenAI's "-9999.0" (and anything at or below it) means "not among the top 20": no value.
bool is_missing_logprob(double lp);

}  // namespace bkd

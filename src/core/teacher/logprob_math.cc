#include "core/teacher/logprob_math.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace bkd {

double logsumexp(const std::vector<double>& x) {
  double m = -std::numeric_limits<double>::infinity();
  for (double v : x) m = std::max(m, v);
  if (!std::isfinite(m)) return m;
  double s = 0;
  for (double v : x) s += std::exp(v - m);
  return m + std::log(s);
}

std::vector<double> log_softmax(const std::vector<float>& logits, double temperature) {
  const double inv_t = temperature > 0 ? 1.0 / temperature : 1.0;
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) * inv_t;
  const double lse = logsumexp(out);
  for (double& v : out) v -= lse;
  return out;
}

std::vector<int32_t> top_k_indices(const std::vector<double>& values, int k) {
  std::vector<int32_t> idx(values.size());
  std::iota(idx.begin(), idx.end(), 0);
  k = std::max(0, std::min<int>(k, static_cast<int>(values.size())));
  auto better = [&](int32_t a, int32_t b) { return values[a] > values[b] || (values[a] == values[b] && a < b); };
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
  idx.resize(k);
  return idx;
}

double log_other_from_topk(const std::vector<double>& topk_logprobs) {
  std::vector<double> kept;
  for (double v : topk_logprobs)
    if (!is_missing_logprob(v) && !std::isnan(v)) kept.push_back(v);
  if (kept.empty()) return 0.0;  // nothing known: all mass is Other
  const double lse = std::min(logsumexp(kept), -1e-7);
  return std::log(-std::expm1(lse));
}

double log_other_exact(const std::vector<double>& logprobs, const std::vector<int32_t>& excluded) {
  std::vector<char> skip(logprobs.size(), 0);
  for (int32_t i : excluded)
    if (i >= 0 && static_cast<size_t>(i) < skip.size()) skip[i] = 1;
  std::vector<double> rest;
  rest.reserve(logprobs.size());
  for (size_t i = 0; i < logprobs.size(); ++i)
    if (!skip[i]) rest.push_back(logprobs[i]);
  return logsumexp(rest);
}

bool is_missing_logprob(double lp) { return std::isnan(lp) || lp <= -9999.0; }

}  // namespace bkd

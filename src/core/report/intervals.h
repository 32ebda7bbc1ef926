#pragma once
// Means with 95% intervals for the experiment: Student's t over independent seeds (the runs of one
// seed share data order and initial weights across arms, so arm differences are taken per seed and
// their mean gets the interval: a paired comparison).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace bkd {

struct Interval {
  double mean = 0, sd = 0, lo = 0, hi = 0;  // sd: sample standard deviation (n - 1)
  int n = 0;
  bool excludes_zero() const { return n >= 2 && (lo > 0 || hi < 0); }
};

// The two-sided 97.5% quantile of Student's t with `dof` degrees of freedom (dof >= 1).
double t_quantile_975(int dof);

// Mean and 95% interval of `values` (n >= 2 for an interval; n = 1 gives lo = hi = mean, sd = 0).
Interval mean_interval(const std::vector<double>& values);

// a[i] - b[i] per seed, then mean_interval. Sizes must match.
Interval paired_difference(const std::vector<double>& a, const std::vector<double>& b);

nlohmann::json to_json(const Interval& i);

}  // namespace bkd

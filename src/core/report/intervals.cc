#include "core/report/intervals.h"

#include <cmath>

#include "core/util/error.h"

namespace bkd {

double t_quantile_975(int dof) {
  // Standard table values (t_{0.975}); beyond 30 the Cornish-Fisher expansion around z = 1.959964
  // to 1/dof^2 (error < 1e-3 there: 2.0394 at 31 against the table's 2.040).
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (dof < 1) throw Error("t quantile with " + std::to_string(dof) + " degrees of freedom");
  if (dof <= 30) return table[dof - 1];
  const double v = double(dof);
  return 1.959964 + 2.372271 / v + 2.822499 / (v * v);
}

Interval mean_interval(const std::vector<double>& v) {
  Interval r;
  r.n = int(v.size());
  if (v.empty()) throw Error("an interval of no values");
  for (double x : v) r.mean += x;
  r.mean /= double(r.n);
  if (r.n == 1) {
    r.lo = r.hi = r.mean;
    return r;
  }
  double ss = 0;
  for (double x : v) ss += (x - r.mean) * (x - r.mean);
  r.sd = std::sqrt(ss / double(r.n - 1));
  const double half = t_quantile_975(r.n - 1) * r.sd / std::sqrt(double(r.n));
  r.lo = r.mean - half, r.hi = r.mean + half;
  return r;
}

Interval paired_difference(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size())
    throw Error("paired difference of " + std::to_string(a.size()) + " and " + std::to_string(b.size()) + " values");
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  return mean_interval(d);
}

nlohmann::json to_json(const Interval& i) {
  return {{"mean", i.mean}, {"sd", i.sd}, {"ci95", {i.lo, i.hi}}, {"n", i.n}, {"excludes_zero", i.excludes_zero()}};
}

}  // namespace bkd

#include "torch/train/health.h"

#include <algorithm>
#include <cmath>

namespace bkd {

LossStats compute_loss_stats(const std::deque<double>& v) {
  LossStats s;
  s.count = int64_t(v.size());
  if (v.empty()) return s;
  const double n = double(v.size());
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / n;
  double var = 0, sxy = 0, sxx = 0;
  const double xbar = (n - 1) / 2;
  for (size_t i = 0; i < v.size(); ++i) {
    var += (v[i] - s.mean) * (v[i] - s.mean);
    sxy += (double(i) - xbar) * (v[i] - s.mean);
    sxx += (double(i) - xbar) * (double(i) - xbar);
  }
  s.std = std::sqrt(var / n);
  s.slope = sxx > 0 ? sxy / sxx : 0;
  return s;
}

void HealthWindows::add(double loss, double post_clip_norm) {
  losses_.push_back(loss);
  norms_.push_back(post_clip_norm);
  while (losses_.size() > kLossWindow) losses_.pop_front();
  while (norms_.size() > kGradWindow) norms_.pop_front();
}

LossStats HealthWindows::loss_stats() const { return compute_loss_stats(losses_); }

double HealthWindows::max_post_clip_norm() const {
  return norms_.empty() ? 0.0 : *std::max_element(norms_.begin(), norms_.end());
}

nlohmann::json HealthWindows::state() const {
  return {{"losses", std::vector<double>(losses_.begin(), losses_.end())},
          {"post_clip_norms", std::vector<double>(norms_.begin(), norms_.end())}};
}

void HealthWindows::restore(const nlohmann::json& j) {
  auto l = j.at("losses").get<std::vector<double>>();
  auto n = j.at("post_clip_norms").get<std::vector<double>>();
  losses_.assign(l.begin(), l.end());
  norms_.assign(n.begin(), n.end());
}

}  // namespace bkd

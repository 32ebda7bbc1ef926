#pragma once
// Training health: rolling windows of losses and clipped gradient norms, and the
// <role>_health.json file the M3 exit-criteria check reads.
#include <cstdint>
#include <deque>
#include <string>

#include <nlohmann/json.hpp>

namespace bkd {

struct LossStats {
  double mean = 0, std = 0, slope = 0;  // slope: least-squares loss change per step
  int64_t count = 0;
};

class HealthWindows {
 public:
  static constexpr size_t kLossWindow = 200, kGradWindow = 100;
  void add(double loss, double post_clip_norm);
  LossStats loss_stats() const;
  double max_post_clip_norm() const;  // over the last kGradWindow steps (0 when empty)
  nlohmann::json state() const;
  void restore(const nlohmann::json& j);

 private:
  std::deque<double> losses_, norms_;
};

LossStats compute_loss_stats(const std::deque<double>& losses);

}  // namespace bkd

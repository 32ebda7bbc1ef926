#include "torch/train/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/util/error.h"

namespace bkd {
namespace {
// Cosine from `from` to `to` as t goes 0 -> 1.
double cosine(double from, double to, double t) {
  t = std::clamp(t, 0.0, 1.0);
  return to + 0.5 * (from - to) * (1.0 + std::cos(M_PI * t));
}
}  // namespace

double lr_at(const ScheduleConfig& c, int64_t step) {
  const double min_lr = c.lr * c.min_lr_ratio;
  if (c.warmup_steps > 0 && step < c.warmup_steps) return c.lr * double(step + 1) / double(c.warmup_steps);
  const int64_t last = std::max<int64_t>(c.total_steps - 1, 1);
  if (c.kind == "cosine") {
    const int64_t span = std::max<int64_t>(last - c.warmup_steps, 1);
    return cosine(c.lr, min_lr, double(step - c.warmup_steps) / double(span));
  }
  if (c.kind == "two-stage") {
    const int64_t mid = std::max<int64_t>(c.total_steps / 2, c.warmup_steps + 1);
    if (step < mid)
      return cosine(c.lr, 0.5 * c.lr, double(step - c.warmup_steps) / double(std::max<int64_t>(mid - c.warmup_steps, 1)));
    return cosine(kStage2Peak * c.lr, min_lr, double(step - mid) / double(std::max<int64_t>(last - mid, 1)));
  }
  throw Error("unknown learning-rate schedule '" + c.kind + "'", "set SCHEDULE to cosine or two-stage");
}

double weight_decay_at(const ScheduleConfig& c, int64_t step) {
  if (c.kind == "two-stage" && step >= std::max<int64_t>(c.total_steps / 2, c.warmup_steps + 1)) return 0.0;
  return c.weight_decay;
}

}  // namespace bkd

#pragma once
// Learning-rate and weight-decay schedules (pure functions of the step).
//   cosine:    linear warm-up to LR, cosine decay to MIN_LR_RATIO * LR at the last step; WD constant.
//   two-stage: BitNet b1.58 2B4T style. Stage 1 (first half): warm-up, cosine from LR towards
//              0.5 * LR; stage 2: abrupt drop to kStage2Peak * LR, cosine to MIN_LR_RATIO * LR, and
//              weight decay 0 (the report's WD schedule; its numeric peaks are not published).
#include <cstdint>
#include <string>

namespace bkd {

struct ScheduleConfig {
  std::string kind = "cosine";  // cosine | two-stage
  double lr = 1.5e-3, min_lr_ratio = 0.1, weight_decay = 0.1;
  int64_t warmup_steps = 50, total_steps = 1000;
};

constexpr double kStage2Peak = 0.4;

double lr_at(const ScheduleConfig& c, int64_t step);  // step in [0, total_steps)
double weight_decay_at(const ScheduleConfig& c, int64_t step);

}  // namespace bkd

#include "torch/train/loss_scaler.h"

namespace bkd {

DynamicLossScaler::DynamicLossScaler(bool enabled, double init_scale, double growth_factor, double backoff_factor,
                                     int64_t growth_interval)
    : enabled_(enabled), scale_(init_scale), growth_(growth_factor), backoff_(backoff_factor),
      interval_(growth_interval) {}

bool DynamicLossScaler::unscale_and_check(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> sums;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    torch::Tensor g = p.grad();
    if (enabled_) g.mul_(1.0 / scale_);
    sums.push_back(g.to(torch::kFloat).sum().reshape({1}));  // inf/NaN anywhere makes the sum non-finite
  }
  if (sums.empty()) return true;
  return torch::isfinite(torch::cat(sums)).all().item<bool>();
}

void DynamicLossScaler::update(bool found_inf) {
  if (!enabled_) return;
  if (found_inf) {
    scale_ *= backoff_;
    clean_steps_ = 0;
  } else if (++clean_steps_ >= interval_) {
    scale_ *= growth_;
    clean_steps_ = 0;
  }
}

nlohmann::json DynamicLossScaler::state() const {
  return {{"enabled", enabled_}, {"scale", scale_}, {"clean_steps", clean_steps_}};
}

void DynamicLossScaler::restore(const nlohmann::json& j) {
  scale_ = j.at("scale").get<double>();
  clean_steps_ = j.at("clean_steps").get<int64_t>();
}

}  // namespace bkd

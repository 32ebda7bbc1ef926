#pragma once
// Dynamic loss scaling for fp16 training (CUDA): multiply the loss by `scale` before backward, divide
// the gradients by it before the step; on inf/NaN gradients skip the step and halve the scale; after
// `growth_interval` clean steps in a row double it. Disabled: scale 1, only the inf/NaN check remains
// (the trainer's NaN guard in bf16/fp32).
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <vector>

namespace bkd {

class DynamicLossScaler {
 public:
  explicit DynamicLossScaler(bool enabled, double init_scale = 65536.0, double growth_factor = 2.0,
                             double backoff_factor = 0.5, int64_t growth_interval = 2000);
  bool enabled() const { return enabled_; }
  double scale() const { return enabled_ ? scale_ : 1.0; }
  // Divides every gradient by the scale (when enabled). Returns true when all gradients are finite.
  bool unscale_and_check(const std::vector<torch::Tensor>& params);
  // Call once per optimizer step with whether that step's gradients had inf/NaN.
  void update(bool found_inf);
  nlohmann::json state() const;
  void restore(const nlohmann::json& j);

 private:
  bool enabled_;
  double scale_, growth_, backoff_;
  int64_t interval_, clean_steps_ = 0;
};

}  // namespace bkd

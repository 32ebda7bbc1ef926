#pragma once
// Autocast switches across LibTorch versions: 1.13 (Debian) has per-device functions
// (set_cpu_enabled, set_autocast_gpu_dtype); 2.4+ takes the device type as an argument and
// deprecates the old names. Colab builds against the LibTorch inside its PyTorch, so both must work.
#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace bkd {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
inline bool autocast_enabled(at::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
inline void set_autocast_enabled(at::DeviceType d, bool on) { at::autocast::set_autocast_enabled(d, on); }
inline at::ScalarType autocast_dtype(at::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
inline void set_autocast(at::DeviceType d, at::ScalarType dtype, bool on) {
  at::autocast::set_autocast_dtype(d, dtype);
  at::autocast::set_autocast_enabled(d, on);
}
#else
inline bool autocast_enabled(at::DeviceType d) {
  return d == at::kCPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
}
inline void set_autocast_enabled(at::DeviceType d, bool on) {
  if (d == at::kCPU) at::autocast::set_cpu_enabled(on);
  else at::autocast::set_enabled(on);
}
inline at::ScalarType autocast_dtype(at::DeviceType d) {
  return d == at::kCPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
}
inline void set_autocast(at::DeviceType d, at::ScalarType dtype, bool on) {
  if (d == at::kCPU) at::autocast::set_autocast_cpu_dtype(dtype);
  else at::autocast::set_autocast_gpu_dtype(dtype);
  set_autocast_enabled(d, on);
}
#endif

// Autocast to `dtype` on one device type for the guard's lifetime, or nothing when `on` is false;
// the previous state comes back after it. Training wraps its forward pass in it; a model whose
// matrices are stored in bf16 runs its float32 norms and activations through them.
class AutocastGuard {
 public:
  AutocastGuard(at::DeviceType type, at::ScalarType dtype, bool on) : type_(type), on_(on) {
    if (!on_) return;
    prev_enabled_ = autocast_enabled(type_);
    prev_dtype_ = autocast_dtype(type_);
    set_autocast(type_, dtype, true);
  }
  // Inference on `device` with weights of `weight_dtype`: autocast unless they are float32.
  AutocastGuard(const at::Device& device, at::ScalarType weight_dtype)
      : AutocastGuard(device.is_cuda() ? at::kCUDA : at::kCPU, weight_dtype, weight_dtype != at::kFloat) {}
  ~AutocastGuard() {
    if (!on_) return;
    set_autocast(type_, prev_dtype_, prev_enabled_);
    if (!prev_enabled_) at::autocast::clear_cache();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  at::DeviceType type_;
  bool on_;
  bool prev_enabled_ = false;
  at::ScalarType prev_dtype_ = at::kBFloat16;
};

}  // namespace bkd

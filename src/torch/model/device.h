#pragma once
// The one reading of DEVICE (auto | cpu | cuda) for training and the local teacher.
#include <torch/torch.h>

#include <string>

#include "core/util/error.h"

namespace bkd {

// True when tensors go to CUDA: DEVICE=cuda, or auto with a CUDA device visible. DEVICE=cuda without
// one is a UsageError naming the fix.
inline bool wants_cuda(const std::string& device_setting) {
  const bool available = torch::cuda::is_available();
  if (device_setting == "cuda" && !available)
    throw UsageError("DEVICE=cuda but this LibTorch build sees no CUDA device",
                     "set DEVICE=cpu or auto, or build against a CUDA LibTorch");
  return device_setting == "cuda" || (device_setting == "auto" && available);
}

inline torch::Device resolve_device(const std::string& device_setting, int cuda_index = 0) {
  return wants_cuda(device_setting) ? torch::Device(torch::kCUDA, int8_t(cuda_index)) : torch::Device(torch::kCPU);
}

}  // namespace bkd

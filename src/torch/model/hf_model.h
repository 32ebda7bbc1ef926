#pragma once
// A Hugging Face causal LM folder (core/model/hf_config.h) loaded into the project's transformer as
// a full-precision teacher: the safetensors files are memory-mapped, every tensor the model needs is
// checked for presence, shape and dtype (BF16, F16 or F32) before any is converted, and a tensor the
// model does not use is an error rather than silently dropped.
#include <string>

#include "torch/model/model_api.h"

namespace bkd {

struct HfLoadOptions {
  // Matrices (embeddings, projections, head) are stored in this type; norm gains and biases stay
  // float32. kBFloat16 halves the memory; forward passes then run under autocast.
  torch::ScalarType weight_dtype = torch::kFloat;
  torch::Device device = torch::kCPU;
};

// "auto" | "fp32" | "bf16" (TEACHER_DTYPE) -> the weight type. auto is bf16 on CUDA; on a CPU with
// bf16 dot products (AVX512-BF16 or AMX-BF16: measured 3.9x the float32 scoring speed of a
// Qwen3-0.6B shape on 2 Zen 4 cores, docs/HF_TEACHERS.md); and where float32 weights would take over
// half the RAM. Otherwise float32, which is exact for every stored dtype and faster there.
// `parameters` is the model's parameter count.
torch::ScalarType hf_weight_dtype(const std::string& setting, const torch::Device& device, int64_t parameters);

LoadedModel load_hf_model(const std::string& dir, const HfLoadOptions& opts = {});

}  // namespace bkd

#pragma once
// Training checkpoints: <role dir>/step_<8 digits>/ holding
//   model.pt    parameters + buffers (+ "rng.cpu", the torch CPU generator state)
//   optim.pt    AdamW state
//   state.json  model config, quant mode, step, seen tokens, flip record, data position, loss scaler,
//               counters and the health windows (so health numbers continue exactly after a resume)
// Written into step_N.tmp-<pid> and renamed: a crash never leaves a half checkpoint. The last `keep`
// checkpoints survive.
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "torch/model/model.h"

namespace bkd {

// Complete checkpoints (with state.json) under `role_dir`, oldest first.
std::vector<std::string> list_checkpoints(const std::string& role_dir);
std::optional<std::string> latest_checkpoint(const std::string& role_dir);

void save_checkpoint(const std::string& role_dir, int64_t step, Transformer& model, torch::optim::Optimizer& opt,
                     const nlohmann::json& state, int64_t keep);
// Loads parameters (+ RNG when restore_rng) into an already-built model of the right shape.
void load_model_weights(const std::string& ckpt, Transformer& model, bool restore_rng);
// Optimizer state onto `device` (the model's), whichever device wrote it.
void load_optimizer(const std::string& ckpt, torch::optim::Optimizer& opt, const torch::Device& device);
nlohmann::json load_checkpoint_state(const std::string& ckpt);

}  // namespace bkd

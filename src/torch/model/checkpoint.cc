#include "torch/model/checkpoint.h"

#include <unistd.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cstdio>
#include <filesystem>

#include "core/config/run_layout.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/json_file.h"

namespace bkd {
namespace fs = std::filesystem;

std::vector<std::string> list_checkpoints(const std::string& role_dir) {
  std::vector<std::string> out;
  if (!dir_exists(role_dir)) return out;
  for (const auto& name : list_dir(role_dir)) {  // sorted: zero-padded steps sort by number
    if (!RunLayout::is_checkpoint_step_name(name)) continue;
    std::string p = join_path(role_dir, name);
    if (file_exists(RunLayout::checkpoint_state(p))) out.push_back(p);
  }
  return out;
}

std::optional<std::string> latest_checkpoint(const std::string& role_dir) {
  auto all = list_checkpoints(role_dir);
  if (all.empty()) return std::nullopt;
  return all.back();
}

void save_checkpoint(const std::string& role_dir, int64_t step, Transformer& model, torch::optim::Optimizer& opt,
                     const nlohmann::json& state, int64_t keep) {
  ensure_dir(role_dir);
  const std::string final_dir = join_path(role_dir, RunLayout::checkpoint_step_name(step));
  const std::string tmp = final_dir + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  ensure_dir(tmp);
  {
    torch::serialize::OutputArchive ar;
    for (const auto& p : model->named_parameters()) ar.write(p.key(), p.value().detach().cpu());
    for (const auto& b : model->named_buffers()) ar.write("buffer." + b.key(), b.value().detach().cpu());
    ar.write("rng.cpu", at::detail::getDefaultCPUGenerator().get_state(), true);
    ar.save_to(RunLayout::checkpoint_model(tmp));
  }
  {
    torch::serialize::OutputArchive ar;
    opt.save(ar);
    ar.save_to(RunLayout::checkpoint_optimizer(tmp));
  }
  write_json_atomic(RunLayout::checkpoint_state(tmp), state);
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  // Keep the newest `keep`; also sweep temp folders left by crashed runs.
  auto all = list_checkpoints(role_dir);
  for (size_t i = 0; i + size_t(keep) < all.size(); ++i) fs::remove_all(all[i]);
  for (const auto& name : list_dir(role_dir))
    if (RunLayout::is_checkpoint_temp_name(name)) fs::remove_all(join_path(role_dir, name));
}

void load_model_weights(const std::string& ckpt, Transformer& model, bool restore_rng) {
  torch::serialize::InputArchive ar;
  ar.load_from(RunLayout::checkpoint_model(ckpt));
  torch::NoGradGuard ng;
  for (auto& p : model->named_parameters()) {
    torch::Tensor t;
    if (!ar.try_read(p.key(), t))
      throw Error("checkpoint " + ckpt + " has no parameter '" + p.key() + "'",
                  "the checkpoint was written by a different model shape; check its state.json");
    if (t.sizes() != p.value().sizes())
      throw Error("checkpoint " + ckpt + ": parameter '" + p.key() + "' has a different shape");
    p.value().copy_(t);
  }
  if (restore_rng) {
    torch::Tensor s;
    if (ar.try_read("rng.cpu", s)) {
      at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle on the shared generator
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(s);
    }
  }
}

void load_optimizer(const std::string& ckpt, torch::optim::Optimizer& opt, const torch::Device& device) {
  torch::serialize::InputArchive ar;
  ar.load_from(RunLayout::checkpoint_optimizer(ckpt), device);  // a GPU run's moments resume on the CPU and back
  opt.load(ar);
}

nlohmann::json load_checkpoint_state(const std::string& ckpt) {
  const std::string p = RunLayout::checkpoint_state(ckpt);
  try {
    return nlohmann::json::parse(read_file(p));
  } catch (const nlohmann::json::exception& e) {
    throw Error("cannot parse " + p + ": " + e.what(), "the checkpoint is damaged; delete it to resume from an older one");
  }
}

}  // namespace bkd

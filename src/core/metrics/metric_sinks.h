#pragma once
// Where training curves go besides CKPT_DIR/<role>/metrics.jsonl: TensorBoard event files under
// TB_DIR/<run> (TENSORBOARD, on by default) and W&B (uploads those files when the run ends; see
// wandb.h). Built from settings; with no settings (tests) it does nothing.
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "core/metrics/tensorboard.h"
#include "core/metrics/wandb.h"

namespace bkd {
class Settings;

class MetricSinks {
 public:
  MetricSinks() = default;
  // `run`: the run's folder under TB_DIR (e.g. "student"). Each file starts with a session-start
  // event at `start_step` (0 for a fresh run, the checkpoint's step for a resumed one), so the steps
  // logged from there on replace those earlier files of the run logged.
  MetricSinks(const Settings* s, const std::string& run, int64_t start_step = 0);
  ~MetricSinks();  // close(), errors logged
  MetricSinks(const MetricSinks&) = delete;
  MetricSinks& operator=(const MetricSinks&) = delete;

  // Each number (booleans as 0/1) in `record` other than "step" becomes the scalar "train/<key>".
  void log(int64_t step, const nlohmann::json& record);
  // Closes the event file; uploads the run folder when W&B is enabled. Idempotent.
  void close();

  bool active() const { return tb_ != nullptr; }
  const std::string& run_dir() const { return run_dir_; }
  std::string event_file() const { return tb_ ? tb_->path() : std::string(); }

 private:
  std::unique_ptr<TensorBoardWriter> tb_;
  WandbStatus wandb_;
  std::string run_dir_;
  bool closed_ = false;
};

}  // namespace bkd

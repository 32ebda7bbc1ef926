#include "core/metrics/metric_sinks.h"

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/util/fs.h"
#include "core/util/log.h"

namespace bkd {

MetricSinks::MetricSinks(const Settings* s, const std::string& run, int64_t start_step) {
  if (!s) return;
  wandb_ = wandb_status(*s);
  if (!wandb_.enabled) log_info("W&B: skipped: " + wandb_.reason);
  const bool tensorboard = s->flag("TENSORBOARD");
  if (!tensorboard && !wandb_.enabled) return;
  if (!tensorboard) log_info("TensorBoard: TENSORBOARD=0, but W&B uploads event files: writing them anyway");
  run_dir_ = RunLayout(*s).tensorboard(run);
  // A resumed run logs steps >= start_step again: drop them from the earlier files first, so no
  // step appears twice on disk (TensorBoard's session-start purge only hides them in its own view).
  if (dir_exists(run_dir_)) {
    int64_t dropped = 0;
    for (const auto& name : list_dir(run_dir_))
      if (name.rfind("events.out.tfevents.", 0) == 0) dropped += trim_tfevents_file(join_path(run_dir_, name), start_step);
    if (dropped > 0)
      log_info("TensorBoard: dropped " + std::to_string(dropped) + " events at steps >= " + std::to_string(start_step) +
               " from earlier files of " + run_dir_ +
               (start_step > 0 ? " (the run resumes there)" : " (an earlier run of this role; this one starts at step 0)"));
  }
  tb_ = std::make_unique<TensorBoardWriter>(run_dir_);
  tb_->session_start(start_step);  // TensorBoard drops what earlier files logged at steps >= start_step
  tb_->flush();
  log_info("TensorBoard: " + tb_->path() + " (tensorboard --logdir " + parent_dir(run_dir_) + ")");
}

MetricSinks::~MetricSinks() {
  try {
    close();
  } catch (const std::exception& e) {
    log_warn(std::string("metric sinks: ") + e.what());
  }
}

void MetricSinks::log(int64_t step, const nlohmann::json& record) {
  if (!tb_) return;
  ScalarList scalars;
  for (auto it = record.begin(); it != record.end(); ++it) {
    if (it.key() == "step") continue;
    if (it->is_number()) scalars.emplace_back("train/" + it.key(), it->get<double>());
    else if (it->is_boolean()) scalars.emplace_back("train/" + it.key(), it->get<bool>() ? 1.0 : 0.0);
  }
  tb_->add_scalars(step, scalars);
  tb_->flush();
}

void MetricSinks::close() {
  if (closed_) return;
  closed_ = true;
  if (!tb_) return;
  tb_->close();
  if (!wandb_.enabled) return;
  log_info("W&B: uploading " + run_dir_ + " to project " + wandb_.project);
  WandbSyncResult r = wandb_sync(wandb_, run_dir_);
  if (r.exit_code != 0)
    log_warn("W&B: `wandb sync` exited with " + std::to_string(r.exit_code) +
             "; the event files stay in " + run_dir_ + " (retry: wandb sync --sync-tensorboard " + run_dir_ + ")");
}

}  // namespace bkd

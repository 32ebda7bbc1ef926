#pragma once
// The `train` stage: pretrains the offline teacher (role teacher: CE on GPT-2 tokens, full precision)
// or trains a BitNet student (role student: KD rows from the KD manifest, KL + CE + format loss;
// role student_ce: the same student with CE only at the same budget, eval's ablation). KD input comes
// only from the manifest that `collect` wrote (core/kd/kd_manifest.h), never from the folder's files.
#include <cstdint>
#include <functional>
#include <string>

#include "torch/train/trainer.h"

namespace bkd {
class Settings;

struct TrainStageOptions {
  std::string role = "student";  // student | student_ce | teacher
  bool resume = false;           // continue from the latest checkpoint of the role
  // Changes to the options the settings give, before anything reads them (the experiment's arms: seed,
  // checkpoint folder, loss weights, flip, precision).
  std::function<void(TrainOptions&)> adjust;
};

struct TrainStageResult {
  bool already_finished = false;  // a finished run with the same model and budget was found
  std::string checkpoint;         // that run's last checkpoint (already_finished)
  int64_t seen_tokens = 0;        // that run's (already_finished)
  TrainResult train;              // this run's (otherwise)
  std::string role_dir, health_path;
  // KD input (role student): the manifest and what was read from its shards.
  std::string kd_manifest;
  int64_t kd_rows_read = 0, kd_shards_read = 0;
};

TrainStageResult run_train_stage(const Settings& s, const TrainStageOptions& opts = {});

}  // namespace bkd

#pragma once
// The training loop shared by the student (BitNet, KD or CE-only) and the offline teacher (full
// precision, CE): AdamW, warm-up + cosine / two-stage schedule, gradient accumulation, clipping,
// bf16 autocast on CPU / fp16 + dynamic loss scaling on CUDA, NaN/inf guard, the A8->A4 flip,
// atomic checkpoints with exact resume, health JSON, JSONL metrics and a progress line.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/model/model_config.h"
#include "torch/train/batch_source.h"
#include "torch/train/losses.h"
#include "torch/train/schedule.h"

namespace bkd {
class Settings;
class DistGroup;
class TransformerImpl;

struct TrainOptions {
  std::string role = "student";  // student | teacher
  ModelConfig model;
  QuantMode start_mode = QuantMode::TernaryA8;
  bool flip_enabled = true;      // A8 -> A4 once seen tokens >= flip_at * budget_tokens
  double flip_at = 0.9;
  int64_t budget_tokens = 0;
  int64_t batch_size = 16, grad_accum = 1, seq_len = 256;
  ScheduleConfig schedule;        // total_steps is derived from the budget
  double clip_norm = 1.0;
  LossWeights loss;
  std::vector<int64_t> structural_ids;
  int64_t ckpt_every = 200, ckpt_keep = 3;
  uint64_t seed = 42;
  int threads = 0;                // 0: all cores
  std::string device = "auto";    // auto | cpu | cuda
  int cuda_index = 0;             // the GPU of this process (LOCAL_RANK under a launcher)
  // Data-parallel group (null: one process). `data` then yields this rank's slice of each global batch
  // (RankSliceSource); batch_size is per rank, the global batch is batch_size x world x grad_accum.
  DistGroup* dist = nullptr;
  int64_t dist_bucket_bytes = 25 << 20;
  std::string precision = "auto"; // auto | fp32 | bf16 | fp16
  std::string ckpt_dir;           // CKPT_DIR: checkpoints go to <ckpt_dir>/<role>/, health beside
  bool resume = false;
  bool progress = true;
  bool metric_sinks = true;  // TensorBoard / W&B for the role (the experiment's many runs write none)
  // Test hooks: stop (as if interrupted) after this many optimizer steps; poison gradients at steps.
  int64_t stop_after_steps = -1;
  std::vector<int64_t> inject_nonfinite_at;
  int inject_nonfinite_rank = -1;  // the rank whose gradients are poisoned (-1: every rank)
  int64_t scaler_growth_interval = 2000;
  const Settings* settings = nullptr;  // for report headers (may be null in tests)
  // Extra keys for every checkpoint's state.json (the teacher's "vocab_map"); an object or null.
  nlohmann::json extra_state;
  // Overwrites the drawn initial weights of a run that starts fresh (not a resumed one): a student
  // started from its teacher (torch/model/student_from_teacher.h). Say what it was in extra_state["init"].
  std::function<void(TransformerImpl&)> init_weights;

  int world_size() const;
  int64_t tokens_per_step() const { return batch_size * grad_accum * seq_len * world_size(); }
  int64_t total_steps() const;
  std::string role_dir() const;
  std::string health_path() const;   // <ckpt_dir>/<role>_health.json
  std::string metrics_path() const;  // <ckpt_dir>/<role>/metrics.jsonl
};

// Options from settings for a role; vocab_size is the tokenized data's vocabulary.
TrainOptions train_options_from_settings(const Settings& s, const std::string& role, int64_t vocab_size);

struct StepRecord {
  int64_t step = 0, seen_tokens = 0;
  double loss = 0, kd = -1, ce = 0, format = 0, lr = 0, wd = 0, grad_norm_pre = 0, grad_norm_post = 0, scale = 1;
  double allreduce_s = 0;  // gradient averaging across ranks (packing included); 0 in one process
  bool skipped = false;
  std::string mode;
};

struct TrainResult {
  int64_t steps = 0, seen_tokens = 0, nan_count = 0, skipped_steps = 0;
  bool flipped = false, finished = false;
  int64_t flip_step = -1, flip_tokens = -1;
  double tokens_per_s = 0;
  std::vector<StepRecord> records;  // the steps run by this call
  nlohmann::json health;
};

TrainResult train(const TrainOptions& opt, BatchSource& data);

// Makes glibc keep freed memory for reuse (no per-step page faults on the large step tensors); train()
// calls it, benchmarks call it to time the same conditions. Idempotent; a no-op elsewhere.
void keep_freed_memory();

}  // namespace bkd

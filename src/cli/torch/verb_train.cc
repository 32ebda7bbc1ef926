// `train [--role student|student_ce|teacher] [--resume]`: the train stage (torch/stages/train.h) and
// its summary.
#include <cstdio>

#include "cli/cli.h"
#include "torch/stages/train.h"

namespace bkd::cli {
namespace {

void print_summary(const std::string& role, const TrainStageResult& r) {
  if (r.already_finished) {
    std::printf("train %s: already finished (%s, %lld seen tokens); delete %s to train again\n", role.c_str(),
                r.checkpoint.c_str(), static_cast<long long>(r.seen_tokens), r.role_dir.c_str());
    return;
  }
  const TrainResult& t = r.train;
  std::printf("train %s: %s after %lld steps, %lld seen tokens, %.0f tokens/s, NaN steps %lld%s\n", role.c_str(),
              t.finished ? "finished" : "stopped", static_cast<long long>(t.steps), static_cast<long long>(t.seen_tokens),
              t.tokens_per_s, static_cast<long long>(t.nan_count),
              t.flipped ? (", A8->A4 flip at step " + std::to_string(t.flip_step)).c_str() : "");
  if (!r.kd_manifest.empty())
    std::printf("KD input: %lld rows from %lld shard(s) named by %s\n", static_cast<long long>(r.kd_rows_read),
                static_cast<long long>(r.kd_shards_read), r.kd_manifest.c_str());
  std::printf("checkpoints: %s\nhealth: %s\n", r.role_dir.c_str(), r.health_path.c_str());
}

void setup_train(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("train", "train the BitNet student (or --role teacher: pretrain the offline teacher)");
  static TrainStageOptions opts;
  sub->add_option("--role", opts.role, "student (BitNet, KD from the KD manifest), student_ce (the same BitNet with CE only: eval's ablation) or teacher (full precision, CE on GPT-2 tokens)")
      ->check(CLI::IsMember({"student", "student_ce", "teacher"}));
  sub->add_flag("--resume", opts.resume, "continue from the latest checkpoint in CKPT_DIR/<role>");
  sub->callback([&cli] { print_summary(opts.role, run_train_stage(cli.settings(), opts)); });
}

RegisterVerb reg_train("train", 60, setup_train);

}  // namespace
}  // namespace bkd::cli

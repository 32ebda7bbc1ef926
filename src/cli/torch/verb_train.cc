// `train [--role student|student_ce|teacher] [--init-from teacher] [--resume] [--nproc N]`: the train stage
// (torch/stages/train.h) and its summary. Data parallel: under torchrun's variables (RANK, WORLD_SIZE,
// MASTER_ADDR, MASTER_PORT) each process is one rank; --nproc N starts N local ranks of this command.
#include <cstdio>
#include <cstdlib>

#include "cli/cli.h"
#include "core/config/settings.h"
#include "core/dist/local_launch.h"
#include "core/util/error.h"
#include "core/util/sysinfo.h"
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

// This command line without --nproc: what every rank runs.
std::vector<std::string> argv_without_nproc(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--nproc") {
      ++i;
      continue;
    }
    if (argv[i].rfind("--nproc=", 0) == 0) continue;
    out.push_back(argv[i]);
  }
  return out;
}

int launch_ranks(Cli& cli, int nproc) {
  if (std::getenv("RANK") || std::getenv("WORLD_SIZE"))
    throw UsageError("--nproc " + std::to_string(nproc) + " inside a launched rank (RANK/WORLD_SIZE are set)",
                     "use either a launcher (torchrun, Slurm, Kubernetes) or --nproc, not both");
  const Settings& s = cli.settings();
  LocalLaunch l;
  l.nproc = nproc;
  l.argv = argv_without_nproc(cli.argv);
  // THREADS=0 means all cores: split them between the ranks instead of oversubscribing.
  if (s.i64("THREADS") == 0) l.threads_per_rank = std::max(1, cpu_cores() / nproc);
  l.grace = std::chrono::seconds(s.i64("DIST_TIMEOUT_S") + 30);
  return launch_local_ranks(l);
}

void setup_train(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("train", "train the BitNet student (or --role teacher: pretrain the offline teacher)");
  static TrainStageOptions opts;
  sub->add_option("--role", opts.role, "student (BitNet, KD from the KD manifest), student_ce (the same BitNet with CE only: eval's ablation) or teacher (full precision, CE on GPT-2 tokens)")
      ->check(CLI::IsMember({"student", "student_ce", "teacher"}));
  sub->add_flag("--resume", opts.resume, "continue from the latest checkpoint in CKPT_DIR/<role>");
  static std::string init_from;
  sub->add_option("--init-from", init_from, "how the student starts (STUDENT_INIT): teacher = the local teacher's shape and weights with SubLN inserted (needs STUDENT_TOKENIZER=teacher), teacher-shape = its shape with drawn weights, scratch = the STUDENT_* shape")
      ->check(CLI::IsMember({"scratch", "teacher", "teacher-shape"}));
  static int nproc = 1;
  sub->add_option("--nproc", nproc, "data parallel: start this many local ranks (c10d Gloo on 127.0.0.1); BATCH_SIZE is per rank")
      ->check(CLI::Range(1, 1024));
  sub->callback([&cli] {
    if (nproc > 1) {
      cli.exit_code = launch_ranks(cli, nproc);
      return;
    }
    const Settings& s = cli.settings();
    print_summary(opts.role, run_train_stage(init_from.empty() ? s : s.with({{"STUDENT_INIT", init_from}}), opts));
  });
}

RegisterVerb reg_train("train", 60, setup_train);

}  // namespace
}  // namespace bkd::cli

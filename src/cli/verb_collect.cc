// `collect`: KD traces (top-K + Other) from the teacher, projected onto the student tokenizer.
#include <cstdio>

#include "cli/cli.h"
#include "core/dist/launch_env.h"
#include "core/stages/collect.h"

namespace bkd::cli {
namespace {

void setup_collect(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("collect", "collect KD traces (top-K + Other) into Parquet shards");
  static std::string worker = "0/1";
  static CollectOptions opts;
  auto* worker_opt = sub->add_option(
      "--worker", worker, "this process's part of the sequences, i/n (default: RANK/WORLD_SIZE when a launcher sets them, else 0/1)");
  sub->add_flag("--merge", opts.merge, "combine the manifests of --worker */n runs into kd_manifest.json");
  sub->add_flag("--restart", opts.restart, "ignore shards that earlier runs finished");
  sub->callback([&cli, worker_opt] {
    // torchrun's contract names the worker when --worker does not (Slurm, Kubernetes indexed Jobs).
    const LaunchEnv env = launch_env_from_environment(/*need_rendezvous=*/false);
    if (env.distributed() && worker_opt->count() == 0) worker = std::to_string(env.rank) + "/" + std::to_string(env.world_size);
    // i/n, digits only: "0/2x" is a typo, not worker 0 of 2.
    const auto slash = worker.find('/');
    auto digits = [](const std::string& d) {
      return !d.empty() && d.size() < 9 && d.find_first_not_of("0123456789") == std::string::npos;
    };
    if (slash == std::string::npos || !digits(worker.substr(0, slash)) || !digits(worker.substr(slash + 1)))
      throw UsageError("--worker expects i/n (for example 0/4), got '" + worker + "'");
    opts.worker = std::stoi(worker.substr(0, slash));
    opts.workers = std::stoi(worker.substr(slash + 1));
    auto r = run_collect(cli.settings(), opts);
    if (opts.merge) {
      std::printf("collect: merged %d workers, %lld rows\n", opts.workers, (long long)r["rows"].get<int64_t>());
      return;
    }
    const auto& st = r["this_run"];
    // Rates over the rows in the KD range (docs/FORMAT.md, "Row accounting"): KD + no teacher boundary
    // (CE only, missing KD signal) + invalid (teacher failures) = 1.
    std::printf("collect: %lld rows in %zu shard(s); this run, of the %lld rows in the KD range: KD %.4f, "
                "no teacher boundary (CE only) %.4f, invalid-row rate %.4f; mean Other mass %.4f, top-K coverage "
                "%.4f, dedup merges %.4f\n",
                (long long)r["rows"].get<int64_t>(), r["manifest"]["shards"].size(),
                (long long)st["rows_in_range"].get<int64_t>(), st["kd_fraction"].get<double>(),
                st["no_teacher_boundary_rate"].get<double>(), st["invalid_row_rate"].get<double>(),
                st["mean_other_mass"].get<double>(), st["mean_topk_coverage"].get<double>(),
                st["dedup_merge_rate"].get<double>());
  });
}

RegisterVerb reg_collect("collect", 50, setup_collect);

}  // namespace
}  // namespace bkd::cli

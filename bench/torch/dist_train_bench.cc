// Data-parallel scaling on this machine (not a test): training tokens/s of the cpu-preset student
// (ternary A8, bf16 autocast, AdamW, seq 256) for one global batch, three ways, interleaved per repeat:
//   1 rank x 1 thread  (the per-core reference),
//   1 rank x 2 threads (intra-op parallelism: the obvious alternative),
//   2 ranks x 1 thread (c10d Gloo over 127.0.0.1, gradients averaged in flat buckets after backward),
// with the all-reduce time per step against the gradient bytes. Ranks are forked processes, each
// runs bkd::train() on the same synthetic token stream as the 1-rank runs (RankSliceSource), so the
// three see the same sequences. Prints a table and writes JSON.
//
// usage: dist_train_bench [--steps N] [--batch GLOBAL] [--repeats R] [--json PATH]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../bench_flags.h"
#include "core/dist/local_launch.h"
#include "core/util/fs.h"
#include "core/util/sysinfo.h"
#include "torch/dist/dist_group.h"
#include "torch/dist/rank_slice_source.h"
#include "torch/train/trainer.h"
#include "../../tests/torch/train_test_util.h"

using namespace bkd;
using json = nlohmann::json;

namespace {

struct Args {
  int steps = 12, repeats = 3;
  int64_t batch = 16;  // global sequences per step
  std::string json;
};

struct RunSpec {
  std::string name;
  int ranks, threads;
};

TrainOptions student(const Args& a, int threads, const std::string& dir) {
  TrainOptions o;
  o.role = "student";
  o.model.vocab_size = 8000, o.model.d_model = 256, o.model.n_layers = 6, o.model.n_heads = 8, o.model.n_kv_heads = 8;
  o.model.ffn_dim = 704, o.model.max_seq_len = 256;
  o.seq_len = 256, o.precision = "bf16", o.threads = threads, o.flip_enabled = false;
  o.budget_tokens = int64_t(a.steps) * a.batch * o.seq_len;
  o.schedule.warmup_steps = 2;
  o.ckpt_dir = dir, o.ckpt_every = 1 << 30, o.progress = false;
  return o;
}

// One rank's run in this (forked) process; its figures go to `out` as JSON.
void run_rank(const Args& a, const RunSpec& spec, int rank, int port, const std::string& dir, const std::string& out) {
  TrainOptions o = student(a, spec.threads, dir);
  o.batch_size = a.batch / spec.ranks;
  std::unique_ptr<DistGroup> g;
  auto docs = test::patterned_docs(8000, 64, 4096, 11);
  std::unique_ptr<BatchSource> data = std::make_unique<TokenWindowSource>(docs, 256, a.batch, -1, 7);
  if (spec.ranks > 1) {
    LaunchEnv e;
    e.rank = rank, e.world_size = spec.ranks, e.local_rank = rank, e.master_addr = "127.0.0.1", e.master_port = port;
    g = DistGroup::connect(e, std::chrono::seconds(120), false);
    o.dist = g.get();
    data = std::make_unique<RankSliceSource>(std::move(data), rank, spec.ranks, o.batch_size);
  }
  TrainResult r = train(o, *data);
  std::vector<double> ar;
  for (size_t i = 1; i < r.records.size(); ++i) ar.push_back(r.records[i].allreduce_s);  // step 0 warms up
  std::sort(ar.begin(), ar.end());
  json j = {{"tokens_per_s", r.tokens_per_s},
            {"allreduce_s_median", ar.empty() ? 0.0 : ar[ar.size() / 2]},
            {"parameters", o.model.parameter_count()}};
  write_file_atomic(out, j.dump());
}

json run(const Args& a, const RunSpec& spec, const std::string& tmp) {
  const int port = spec.ranks > 1 ? free_loopback_port() : 0;
  std::vector<pid_t> kids;
  for (int r = 0; r < spec.ranks; ++r) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      try {
        run_rank(a, spec, r, port, tmp + "/ck_" + spec.name + std::to_string(r), tmp + "/r" + std::to_string(r) + ".json");
        ::_exit(0);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "rank %d: %s\n", r, e.what());
        ::_exit(1);
      }
    }
    kids.push_back(pid);
  }
  for (pid_t k : kids) {
    int st = 0;
    ::waitpid(k, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) throw std::runtime_error(spec.name + ": a rank failed");
  }
  json j = json::parse(read_file(tmp + "/r0.json"));
  std::system(("rm -rf '" + tmp + "'/ck_* '" + tmp + "'/r*.json").c_str());
  return j;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a;
    for_each_flag(argc, argv, "dist_train_bench", [&](const std::string& name, const FlagValue& value) {
      if (name == "--steps") a.steps = std::stoi(value());
      else if (name == "--batch") a.batch = std::stoll(value());
      else if (name == "--repeats") a.repeats = std::stoi(value());
      else if (name == "--json") a.json = value();
      else return false;
      return true;
    });
    if (!dist_available()) throw std::runtime_error("built without Gloo (install libgloo-dev and rebuild)");
    if (a.batch % 2 != 0) throw std::runtime_error("--batch must be even (two ranks share it)");
    char tmpl[] = "/tmp/bkd_dist_bench_XXXXXX";
    const std::string tmp = ::mkdtemp(tmpl);
    const std::vector<RunSpec> specs = {{"1 rank x 1 thread", 1, 1}, {"1 rank x 2 threads", 1, 2}, {"2 ranks x 1 thread", 2, 1}};
    std::vector<std::vector<double>> tps(specs.size()), ar(specs.size());
    int64_t params = 0;
    for (int rep = 0; rep < a.repeats; ++rep)
      for (size_t s = 0; s < specs.size(); ++s) {  // interleaved: drift hits every configuration alike
        json j = run(a, specs[s], tmp);
        tps[s].push_back(j["tokens_per_s"]);
        ar[s].push_back(j["allreduce_s_median"]);
        params = j["parameters"];
        std::fprintf(stderr, "repeat %d %-20s %.0f tok/s\n", rep + 1, specs[s].name.c_str(), tps[s].back());
      }
    std::system(("rm -rf '" + tmp + "'").c_str());
    const double grad_bytes = double(params) * 4.0;
    const double base = median(tps[0]);
    std::printf("\ndist_train_bench: cpu-preset student (%lld parameters, %.1f MB of fp32 gradients), global batch %lld x 256 "
                "tokens, %d steps, median of %d interleaved repeats, %s\n\n",
                (long long)params, grad_bytes / 1e6, (long long)a.batch, a.steps, a.repeats, cpu_model().c_str());
    std::printf("| configuration | tokens/s (min-max) | vs 1 x 1 | scaling efficiency | all-reduce / step | all-reduce GB/s |\n");
    std::printf("|---|---|---|---|---|---|\n");
    json rows = json::array();
    for (size_t s = 0; s < specs.size(); ++s) {
      const double m = median(tps[s]), lo = *std::min_element(tps[s].begin(), tps[s].end()),
                   hi = *std::max_element(tps[s].begin(), tps[s].end());
      const int workers = std::max(specs[s].ranks, specs[s].threads);
      const double eff = m / (base * workers), arm = median(ar[s]);
      // Bytes each rank sends and receives in a ring all-reduce: 2 (W-1)/W of the buffer.
      const double bus = arm > 0 ? grad_bytes * 2.0 * (specs[s].ranks - 1) / specs[s].ranks / arm / 1e9 : 0.0;
      std::printf("| %s | %.0f (%.0f-%.0f) | %.2fx | %.0f%% | %s | %s |\n", specs[s].name.c_str(), m, lo, hi, m / base,
                  100 * eff, arm > 0 ? (std::to_string(int(arm * 1000 + 0.5)) + " ms").c_str() : "-",
                  bus > 0 ? (std::to_string(bus).substr(0, 4)).c_str() : "-");
      rows.push_back({{"configuration", specs[s].name}, {"ranks", specs[s].ranks}, {"threads", specs[s].threads},
                      {"tokens_per_s", tps[s]}, {"tokens_per_s_median", m}, {"scaling_efficiency", eff},
                      {"allreduce_s_median", arm}, {"allreduce_bus_gb_per_s", bus}});
    }
    json out = {{"bench", "dist_train_bench"}, {"parameters", params}, {"gradient_bytes", grad_bytes},
                {"global_batch", a.batch}, {"seq_len", 256}, {"steps", a.steps}, {"repeats", a.repeats},
                {"cpu", cpu_model()}, {"rows", rows},
                {"command", "build/bin/dist_train_bench --steps " + std::to_string(a.steps) + " --batch " +
                                std::to_string(a.batch) + " --repeats " + std::to_string(a.repeats)}};
    if (!a.json.empty()) write_file_atomic(a.json, out.dump(2) + "\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist_train_bench: %s\n", e.what());
    return 1;
  }
}

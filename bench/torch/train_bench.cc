// Training throughput of the cpu-preset student: the C++ trainer's step (bf16 autocast, ternary + A8
// STE, AdamW) side by side with PyTorch eager (train_bench_eager.py, same model, batch and optimizer),
// with a forward / backward / optimizer / quantizer breakdown and MFU against a bf16 matmul peak
// measured in the same run. Not a test: prints a table and writes JSON.
//
// usage: train_bench [--threads N] [--steps N] [--warmup N] [--batch N] [--seq N] [--mode a8|a4|fp]
//                    [--no-eager] [--json PATH] [--profile TRACE]
// --profile writes LibTorch's per-operator trace of the timed C++ steps (chrome://tracing format).
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "../bench_flags.h"

#include "core/util/fs.h"
#include "core/util/sysinfo.h"
#include "torch/train/losses.h"
#include "torch/model/model.h"
#include "torch/model/quant.h"
#include "torch/train/trainer.h"

using namespace bkd;

namespace {

struct Args {
  int threads = 2, steps = 5, warmup = 2;
  int64_t batch = 16, seq = 256, d = 256, layers = 6, heads = 8, kv = 8, ffn = 704, vocab = 8000;
  std::string mode = "a8", json, profile;
  bool eager = true;
};

Args parse(int argc, char** argv) {
  Args a;
  for_each_flag(argc, argv, "train_bench", [&](const std::string& name, const FlagValue& value) {
    if (name == "--threads") a.threads = std::stoi(value());
    else if (name == "--steps") a.steps = std::stoi(value());
    else if (name == "--warmup") a.warmup = std::stoi(value());
    else if (name == "--batch") a.batch = std::stoll(value());
    else if (name == "--seq") a.seq = std::stoll(value());
    else if (name == "--d") a.d = std::stoll(value());
    else if (name == "--layers") a.layers = std::stoll(value());
    else if (name == "--ffn") a.ffn = std::stoll(value());
    else if (name == "--vocab") a.vocab = std::stoll(value());
    else if (name == "--mode") a.mode = value();
    else if (name == "--json") a.json = value();
    else if (name == "--profile") a.profile = value();
    else if (name == "--no-eager") a.eager = false;
    else return false;
    return true;
  });
  return a;
}

double bf16_peak_flops() {
  const int64_t n = 2048;
  torch::Tensor a = torch::randn({n, n}).to(torch::kBFloat16), b = torch::randn({n, n}).to(torch::kBFloat16);
  torch::mm(a, b);
  double best = 0;
  for (int r = 0; r < 5; ++r) {
    Timer t;
    torch::mm(a, b);
    best = std::max(best, 2.0 * n * n * n / t.seconds());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  try {
    a = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "train_bench: %s\n", e.what());
    return 2;
  }
  at::set_num_threads(a.threads);
  keep_freed_memory();  // as train() does
  ModelConfig cfg;
  cfg.vocab_size = a.vocab, cfg.d_model = a.d, cfg.n_layers = a.layers, cfg.n_heads = a.heads, cfg.n_kv_heads = a.kv;
  cfg.ffn_dim = a.ffn, cfg.max_seq_len = a.seq, cfg.bitlinear = a.mode != "fp";
  torch::manual_seed(0);
  Transformer model(cfg, quant_mode_from_string(a.mode));
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : model->parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  torch::optim::AdamW opt({torch::optim::OptimizerParamGroup(decay), torch::optim::OptimizerParamGroup(no_decay)},
                          torch::optim::AdamWOptions(1e-3).betas({0.9, 0.95}).eps(1e-8));
  static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[0].options()).weight_decay(0.1);
  static_cast<torch::optim::AdamWOptions&>(opt.param_groups()[1].options()).weight_decay(0.0);
  torch::Tensor ids = torch::randint(0, a.vocab, {a.batch, a.seq + 1}, torch::kLong);
  Batch batch;
  batch.inputs = ids.narrow(1, 0, a.seq).contiguous();
  batch.targets = ids.narrow(1, 1, a.seq).contiguous();
  batch.loss_mask = torch::ones({a.batch, a.seq}, torch::kBool);
  batch.key_valid = batch.loss_mask;
  std::vector<torch::Tensor> params = model->parameters();

  double t_fwd = 0, t_bwd = 0, t_opt = 0, t_quant = 0, loss = 0;
  std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
  for (int i = 0; i < a.warmup + a.steps; ++i) {
    const bool timed = i >= a.warmup;
    if (i == a.warmup && !a.profile.empty())
      profile = std::make_unique<torch::autograd::profiler::RecordProfile>(a.profile);
    set_quant_profiling(timed);
    reset_quant_profile();
    Timer t0;
    opt.zero_grad();
    torch::Tensor logits;
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
    logits = model->forward(batch.inputs);  // full sequences: no key-padding mask needed
    at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
    LossTerms lt = compute_losses(logits, batch, LossWeights{}, {});
    const double f = t0.seconds();
    Timer t1;
    lt.total.backward();
    torch::nn::utils::clip_grad_norm_(params, 1.0);
    const double b = t1.seconds();
    Timer t2;
    opt.step();
    const double o = t2.seconds();
    if (timed) t_fwd += f, t_bwd += b, t_opt += o, t_quant += quant_profile_seconds();
    loss = lt.total.item<double>();
  }
  set_quant_profiling(false);
  profile.reset();  // writes the trace
  const double step = (t_fwd + t_bwd + t_opt) / a.steps;
  const double tps = double(a.batch * a.seq) / step;
  // Training FLOPs per token: 6 x (matmul parameters incl. the head) + attention scores/values (12 L T d).
  const int64_t matmul_params = cfg.parameter_count() - cfg.vocab_size * cfg.d_model * (cfg.tie_embeddings ? 0 : 1);
  const double flops_per_token = 6.0 * double(matmul_params) + 12.0 * double(cfg.n_layers * a.seq * cfg.d_model);
  const double peak = bf16_peak_flops();
  const double mfu = tps * flops_per_token / peak;

  nlohmann::json out = {{"config", {{"d_model", a.d}, {"layers", a.layers}, {"heads", a.heads}, {"ffn", a.ffn},
                                    {"vocab", a.vocab}, {"seq", a.seq}, {"batch", a.batch}, {"mode", a.mode},
                                    {"threads", a.threads}, {"parameters", cfg.parameter_count()}}},
                        {"cpp", {{"tokens_per_s", tps}, {"step_s", step}, {"forward_s", t_fwd / a.steps},
                                 {"backward_s", t_bwd / a.steps}, {"optimizer_s", t_opt / a.steps},
                                 {"quantizers_s", t_quant / a.steps}, {"loss", loss}, {"mfu", mfu}}},
                        {"bf16_matmul_peak_flops", peak},
                        {"flops_per_token", flops_per_token},
                        {"cpu", cpu_model()}};
  std::printf("cpu student (%lld params, d %lld, %lld layers, vocab %lld, seq %lld, batch %lld, %s, %d threads)\n",
              (long long)cfg.parameter_count(), (long long)a.d, (long long)a.layers, (long long)a.vocab,
              (long long)a.seq, (long long)a.batch, a.mode.c_str(), a.threads);
  std::printf("%-16s %12s %10s %10s %10s %10s %10s\n", "impl", "tokens/s", "step s", "fwd s", "bwd s", "opt s", "quant s");
  std::printf("%-16s %12.0f %10.3f %10.3f %10.3f %10.3f %10.3f\n", "c++ (bkd)", tps, step, t_fwd / a.steps,
              t_bwd / a.steps, t_opt / a.steps, t_quant / a.steps);
  if (a.eager) {
    const std::string here = parent_dir(__FILE__);  // the eager script sits beside this source file
    char cmd[2048];
    std::snprintf(cmd, sizeof cmd,
                  "/usr/bin/python3 %s/train_bench_eager.py --d %lld --layers %lld --heads %lld --kv-heads %lld "
                  "--ffn %lld --vocab %lld --seq %lld --batch %lld --steps %d --warmup %d --threads %d --mode %s",
                  here.c_str(), (long long)a.d, (long long)a.layers, (long long)a.heads, (long long)a.kv,
                  (long long)a.ffn, (long long)a.vocab, (long long)a.seq, (long long)a.batch, a.steps, a.warmup,
                  a.threads, a.mode.c_str());
    std::string text;
    if (FILE* p = popen(cmd, "r")) {
      char buf[4096];
      while (std::fgets(buf, sizeof buf, p)) text += buf;
      pclose(p);
    }
    try {
      nlohmann::json e = nlohmann::json::parse(text.substr(text.find('{')));
      out["eager"] = e;
      std::printf("%-16s %12.0f %10.3f %10.3f %10.3f %10.3f %10s\n", "pytorch eager", e["tokens_per_s"].get<double>(),
                  e["step_s"].get<double>(), e["forward_s"].get<double>(), e["backward_s"].get<double>(),
                  e["optimizer_s"].get<double>(), "-");
      out["speedup_vs_eager"] = tps / e["tokens_per_s"].get<double>();
      std::printf("speedup vs eager: %.2fx (target >= 1.3x)\n", out["speedup_vs_eager"].get<double>());
    } catch (...) {
      std::printf("pytorch eager: failed to run (%s)\n", cmd);
    }
  }
  std::printf("bf16 matmul peak %.1f GFLOP/s; MFU %.1f%% (%.1f MFLOP/token)\n", peak / 1e9, 100 * mfu,
              flops_per_token / 1e6);
  if (!a.json.empty()) write_file_atomic(a.json, out.dump(2) + "\n");
  return 0;
}

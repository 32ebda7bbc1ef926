#include "torch/train/trainer.h"

#include <ATen/autocast_mode.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/config/settings.h"
#include "core/metrics/metric_sinks.h"
#include "core/util/crash_report.h"
#include "core/config/run_layout.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/util/progress.h"
#include "core/report/report.h"
#include "core/util/sysinfo.h"
#include "torch/model/checkpoint.h"
#include "torch/train/health.h"
#include "torch/model/autocast_compat.h"
#include "torch/model/device.h"
#include "torch/train/loss_scaler.h"
#include "torch/model/model.h"
#include "torch/dist/dist_group.h"

namespace bkd {

void keep_freed_memory() {
#ifdef __GLIBC__
  // Every step allocates and frees the same large tensors (logits, attention scores). glibc hands
  // blocks over 32 MiB back to the kernel at once, so each step paid for fresh zeroed pages again
  // (page faults were ~14% of a loaded machine's step). Keep freed memory in the heap instead.
  static const bool done = [] {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return true;
  }();
  (void)done;
#endif
}

namespace {

double grad_norm(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard ng;
  double sq = 0;
  for (const auto& p : params)
    if (p.grad().defined()) sq += p.grad().to(torch::kDouble).pow(2).sum().item<double>();
  return std::sqrt(sq);
}

nlohmann::json record_json(const StepRecord& r) {
  nlohmann::json j = {{"step", r.step},   {"seen_tokens", r.seen_tokens}, {"loss", r.loss},
                      {"ce", r.ce},       {"format", r.format},           {"lr", r.lr},
                      {"wd", r.wd},       {"grad_norm_pre", r.grad_norm_pre}, {"grad_norm_post", r.grad_norm_post},
                      {"scale", r.scale}, {"skipped", r.skipped},         {"mode", r.mode}};
  if (r.kd >= 0) j["kd"] = r.kd;
  if (r.allreduce_s > 0) j["allreduce_s"] = r.allreduce_s;
  return j;
}

// Keeps the metrics lines up to `step` (after a resume the later ones are re-run and re-logged).
void truncate_metrics(const std::string& path, int64_t step) {
  if (!file_exists(path)) return;
  std::ifstream in(path);
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      if (nlohmann::json::parse(line).at("step").get<int64_t>() < step) kept += line + "\n";
    } catch (...) {  // a torn last line from a crash
    }
  }
  write_file_atomic(path, kept);
}

// The accumulation steps that keep a checkpoint's global batch on this run's world size and per-rank
// batch, so the schedule, the flip and the data order continue unchanged.
int64_t accumulation_for_global_batch(const TrainOptions& o, const nlohmann::json& st, const std::string& ck) {
  if (!st.contains("global_batch")) return o.grad_accum;  // written by one process: batch x accumulation
  const int64_t global = st["global_batch"].at("sequences").get<int64_t>();
  const int64_t per_micro = o.batch_size * o.world_size();
  if (global == per_micro * o.grad_accum) return o.grad_accum;
  if (global % per_micro != 0)
    throw UsageError("checkpoint " + ck + " was trained with a global batch of " + std::to_string(global) +
                         " sequences, which " + std::to_string(o.world_size()) + " rank(s) x BATCH_SIZE=" +
                         std::to_string(o.batch_size) + " cannot make up",
                     "choose BATCH_SIZE and the number of ranks so that their product divides " + std::to_string(global));
  const int64_t a = global / per_micro;
  log_info("train " + o.role + ": the checkpoint's global batch is " + std::to_string(global) + " sequences: " +
           std::to_string(o.world_size()) + " rank(s) x " + std::to_string(o.batch_size) + " x " + std::to_string(a) +
           " accumulation steps (GRAD_ACCUM=" + std::to_string(o.grad_accum) + " is overridden to keep it)");
  return a;
}

}  // namespace

int TrainOptions::world_size() const { return dist ? dist->world_size() : 1; }

int64_t TrainOptions::total_steps() const {
  return std::max<int64_t>(1, (budget_tokens + tokens_per_step() - 1) / tokens_per_step());
}
std::string TrainOptions::role_dir() const { return RunLayout::role_checkpoints_in(ckpt_dir, role); }
std::string TrainOptions::health_path() const { return RunLayout::health_in(ckpt_dir, role); }
std::string TrainOptions::metrics_path() const { return RunLayout::metrics_in(role_dir()); }

TrainResult train(const TrainOptions& o, BatchSource& data) {
  if (o.role != "student" && o.role != "student_ce" && o.role != "teacher")
    throw UsageError("unknown training role '" + o.role + "'", "use --role student or --role teacher");
  if (o.ckpt_dir.empty()) throw UsageError("no checkpoint directory given", "set CKPT_DIR");
  at::set_num_threads(o.threads > 0 ? o.threads : cpu_cores());

  const torch::Device device = resolve_device(o.device, o.cuda_index);
  const bool cuda = device.is_cuda();
  if (!cuda) keep_freed_memory();  // the step tensors live in host memory only on the CPU
  // Data parallel: every rank runs this loop on its slice; rank 0 alone writes checkpoints, health and
  // metrics. Gradients and per-step statistics are summed over ranks before anything decides.
  const int world = o.world_size(), rank = o.dist ? o.dist->rank() : 0;
  const bool writer = rank == 0;
  const std::string precision = o.precision == "auto" ? (cuda ? "fp16" : "bf16") : o.precision;
  if (precision == "fp16" && !cuda)
    throw UsageError("PRECISION=fp16 needs CUDA", "use PRECISION=bf16 or auto on CPU");
  const bool bf16 = precision == "bf16", fp16 = precision == "fp16";

  torch::manual_seed(int64_t(o.seed));
  Transformer model(o.model, o.start_mode);
  model->to(device);
  std::vector<torch::Tensor> decay, no_decay, params;
  for (const auto& p : model->parameters()) {
    (p.dim() >= 2 ? decay : no_decay).push_back(p);
    params.push_back(p);
  }
  torch::optim::AdamW opt({torch::optim::OptimizerParamGroup(decay), torch::optim::OptimizerParamGroup(no_decay)},
                          torch::optim::AdamWOptions(o.schedule.lr).betas({0.9, 0.95}).eps(1e-8).weight_decay(0.0));
  DynamicLossScaler scaler(fp16, 65536.0, 2.0, 0.5, o.scaler_growth_interval);
  HealthWindows windows;
  ScheduleConfig sched = o.schedule;
  int64_t grad_accum = o.grad_accum;  // a resume on another world size keeps the global batch by changing it
  torch::Tensor structural = torch::tensor(o.structural_ids, torch::kLong).to(device);

  int64_t step = 0, seen = 0, nan_count = 0, skipped = 0, flip_step = -1, flip_tokens = -1;
  bool flipped = false;
  const std::string role_dir = o.role_dir();
  if (o.resume) {
    auto ck = latest_checkpoint(role_dir);
    if (!ck) {
      log_info("train " + o.role + ": no checkpoint in " + role_dir + ", starting fresh");
    } else {
      nlohmann::json st = load_checkpoint_state(*ck);
      if (nlohmann::json(o.model) != st.at("model_config"))
        throw UsageError("checkpoint " + *ck + " was trained with model " + st.at("model_config").dump() +
                             " but the settings now give " + nlohmann::json(o.model).dump(),
                         "restore the model settings or start a fresh run without --resume");
      // The schedule, the flip and the data position depend on the budget: a run resumes only with
      // the budget it started with (the pipeline resumes interrupted runs; a changed budget is a new run).
      if (st.value("budget_tokens", o.budget_tokens) != o.budget_tokens)
        throw UsageError("checkpoint " + *ck + " belongs to a run with a budget of " +
                             std::to_string(st.value("budget_tokens", int64_t(0))) + " tokens, the settings now give " +
                             std::to_string(o.budget_tokens),
                         "restore the budget to continue that run, or delete " + role_dir + " to start a new one");
      grad_accum = accumulation_for_global_batch(o, st, *ck);
      load_model_weights(*ck, model, true);
      load_optimizer(*ck, opt, device);
      step = st.at("step"), seen = st.at("seen_tokens");
      nan_count = st.at("nan_count"), skipped = st.at("skipped_steps");
      const auto& fl = st.at("flip");
      flipped = fl.at("done"), flip_step = fl.at("step"), flip_tokens = fl.at("tokens");
      model->set_quant_mode(quant_mode_from_string(st.at("quant_mode")));
      data.restore(st.at("data"));
      scaler.restore(st.at("scaler"));
      windows.restore(st.at("health_windows"));
      if (writer) truncate_metrics(o.metrics_path(), step);
      log_info("train " + o.role + ": resumed from " + *ck + " at step " + std::to_string(step) + ", " +
               std::to_string(seen) + " seen tokens, mode " + to_string(model->quant_mode()));
    }
  } else if (!list_checkpoints(role_dir).empty()) {
    throw UsageError("checkpoints already exist in " + role_dir,
                     "pass --resume to continue that run, or delete the folder to start over");
  }
  if (step == 0 && o.init_weights) o.init_weights(*model);
  const int64_t tokens_per_step = o.batch_size * grad_accum * o.seq_len * world;
  sched.total_steps = std::max<int64_t>(1, (o.budget_tokens + tokens_per_step - 1) / tokens_per_step);
  if (writer) {
    ensure_dir(role_dir);
    if (!o.resume && file_exists(o.metrics_path())) write_file_atomic(o.metrics_path(), "");
  }
  if (o.dist) o.dist->broadcast_from_rank0(model->parameters());  // one starting point, whatever each rank did

  log_info("train " + o.role + ": " + std::to_string(o.model.parameter_count()) + " parameters, mode " +
           to_string(model->quant_mode()) + ", " + precision + " on " + (cuda ? "cuda" : "cpu") + ", " +
           std::to_string(at::get_num_threads()) + " threads; " + std::to_string(sched.total_steps) + " steps of " +
           std::to_string(tokens_per_step) + " tokens" +
           (o.dist ? " (" + std::to_string(world) + " ranks x " + std::to_string(o.batch_size) + " sequences x " +
                         std::to_string(grad_accum) + " accumulation steps)"
                   : std::string()) +
           "; data: " + data.describe());

  auto state_json = [&] {
    nlohmann::json st{{"format", 1},
                          {"role", o.role},
                          {"step", step},
                          {"total_steps", sched.total_steps},
                          {"seen_tokens", seen},
                          {"budget_tokens", o.budget_tokens},
                          {"model_config", o.model},
                          {"quant_mode", to_string(model->quant_mode())},
                          {"flip", {{"done", flipped}, {"step", flip_step}, {"tokens", flip_tokens}}},
                          {"data", data.state()},
                          {"scaler", scaler.state()},
                          {"nan_count", nan_count},
                          {"skipped_steps", skipped},
                          {"health_windows", windows.state()},
                          {"seed", o.seed},
                          // The data position above is global (RankSliceSource); this says how it was cut.
                          {"global_batch",
                           {{"sequences", o.batch_size * grad_accum * world},
                            {"seq_len", o.seq_len},
                            {"world_size", world},
                            {"per_rank_batch", o.batch_size},
                            {"grad_accum", grad_accum}}}};
    if (o.extra_state.is_object())
      for (auto it = o.extra_state.begin(); it != o.extra_state.end(); ++it) st[it.key()] = it.value();
    return st;
  };

  TrainResult res;
  Timer timer;
  const int64_t seen_at_start = seen;
  auto health_json = [&] {
    LossStats ls = windows.loss_stats();
    const double secs = timer.seconds();
    return nlohmann::json{
        {"role", o.role},
        {"seen_tokens", seen},
        {"budget_tokens", o.budget_tokens},
        {"steps", step},
        {"total_steps", sched.total_steps},
        {"finished", step >= sched.total_steps},
        {"quant_mode", to_string(model->quant_mode())},
        {"flip",
         {{"enabled", o.flip_enabled},
          {"flip_at", o.flip_at},
          {"done", flipped},
          {"step", flip_step},
          {"tokens", flip_tokens},
          {"fraction", flipped && o.budget_tokens > 0 ? double(flip_tokens) / double(o.budget_tokens) : 0.0}}},
        {"nan_count", nan_count},
        {"skipped_steps", skipped},
        {"max_post_clip_grad_norm_last_100", windows.max_post_clip_norm()},
        {"clip_norm", o.clip_norm},
        {"loss_last_200", {{"mean", ls.mean}, {"std", ls.std}, {"slope_per_step", ls.slope}, {"count", ls.count}}},
        {"tokens_per_s", secs > 0 ? double(seen - seen_at_start) / secs : 0.0},
        {"peak_rss_bytes", peak_rss_bytes()},
        {"precision", precision},
        {"device", cuda ? "cuda" : "cpu"},
        {"threads", at::get_num_threads()},
        {"world_size", world},
        {"backend", o.dist ? o.dist->backend() : std::string("none")},
        {"parameters", o.model.parameter_count()},
        {"checkpoint_dir", role_dir}};
  };
  auto write_health = [&] {
    if (!writer) return;
    Report rep(o.role + "_health", o.settings);
    rep.body() = health_json();
    res.health = rep.write(o.health_path());
  };

  std::FILE* metrics = writer ? std::fopen(o.metrics_path().c_str(), "a") : nullptr;
  if (writer && !metrics) throw Error("cannot open " + o.metrics_path() + " for appending");
  MetricSinks sinks(writer && o.metric_sinks ? o.settings : nullptr, o.role, step);  // TensorBoard / W&B (none without settings)
  const bool show_progress = o.progress && writer;
  Progress progress("train " + o.role, uint64_t(std::max<int64_t>(0, o.budget_tokens - seen)), "tok");
  int64_t steps_this_call = 0;
  while (step < sched.total_steps) {
    if (o.stop_after_steps >= 0 && steps_this_call >= o.stop_after_steps) break;
    if (o.flip_enabled && !flipped && model->quant_mode() == QuantMode::TernaryA8 &&
        double(seen) >= o.flip_at * double(o.budget_tokens)) {
      model->set_quant_mode(QuantMode::TernaryA4);
      flipped = true, flip_step = step, flip_tokens = seen;
      log_info("train " + o.role + ": A8 -> A4 flip at step " + std::to_string(step) + ", " + std::to_string(seen) +
               " tokens (" + std::to_string(100.0 * double(seen) / double(o.budget_tokens)) + "% of the budget)");
    }
    // What a crash report names: role, step and phase (set per phase; a few hundred ns a step).
    auto phase = [&](const char* what) {
      set_crash_context("train %s step %lld/%lld (%s, %s on %s): %s", o.role.c_str(), (long long)step,
                        (long long)sched.total_steps, to_string(model->quant_mode()).c_str(), precision.c_str(),
                        cuda ? "cuda" : "cpu", what);
    };
    StepRecord r;
    r.step = step;
    r.lr = lr_at(sched, step);
    r.wd = weight_decay_at(sched, step);
    auto& groups = opt.param_groups();
    for (size_t g = 0; g < groups.size(); ++g) {
      auto& go = static_cast<torch::optim::AdamWOptions&>(groups[g].options());
      go.lr(r.lr);
      go.weight_decay(g == 0 ? r.wd : 0.0);
    }
    opt.zero_grad();
    bool loss_finite = true;
    int64_t step_tokens = 0;
    for (int64_t a = 0; a < grad_accum; ++a) {
      phase("batch");
      Batch b = data.next().to(device);
      torch::Tensor logits;
      phase("forward");
      {
        // Autocast for the forward pass only; losses run in float32 outside it.
        AutocastGuard cpu_ac(at::kCPU, at::kBFloat16, bf16 && !cuda);
        AutocastGuard cuda_ac(at::kCUDA, at::kHalf, fp16 && cuda);
        logits = model->forward(b.inputs, b.key_valid);
      }
      phase("losses");
      LossTerms t = compute_losses(logits, b, o.loss, structural);
      phase("backward");
      (t.total * (scaler.scale() / double(grad_accum))).backward();
      const double lv = t.total.item<double>();
      loss_finite = loss_finite && std::isfinite(lv);
      r.loss += lv / double(grad_accum);
      r.ce += t.ce.item<double>() / double(grad_accum);
      r.format += t.format.item<double>() / double(grad_accum);
      if (t.kd.defined()) r.kd = std::max(r.kd, 0.0) + t.kd.item<double>() / double(grad_accum);
      step_tokens += b.tokens;
    }
    for (int64_t s : o.inject_nonfinite_at)
      if (s == step && (o.inject_nonfinite_rank < 0 || o.inject_nonfinite_rank == rank)) {
        torch::NoGradGuard ng;
        params[0].grad().view({-1})[0] = std::numeric_limits<float>::infinity();
      }
    if (o.dist) {
      // Mean gradients and mean statistics over ranks; a non-finite loss or gradient anywhere reaches
      // every rank (a NaN survives the sum), so all ranks skip the same steps and stay identical.
      phase("gradient all-reduce");
      r.allreduce_s = o.dist->average_gradients(params, o.dist_bucket_bytes);
      const auto sum = o.dist->sum({r.loss, r.ce, r.format, std::max(r.kd, 0.0), double(step_tokens), loss_finite ? 0.0 : 1.0},
                                   "step statistics");
      r.loss = sum[0] / world, r.ce = sum[1] / world, r.format = sum[2] / world;
      if (r.kd >= 0) r.kd = sum[3] / world;
      step_tokens = int64_t(sum[4]);
      loss_finite = sum[5] == 0.0;
    }
    seen += step_tokens;
    phase("unscale and clip");
    const bool grads_finite = scaler.unscale_and_check(params);
    r.scale = scaler.scale();
    if (grads_finite && loss_finite) {
      // Clip with a float64-accumulated norm, so the recorded post-clip norm is <= CLIP_NORM up to
      // rounding (torch's float32 norm of ~1e7 gradients can be off by 1e-4).
      r.grad_norm_pre = grad_norm(params);
      if (std::isfinite(r.grad_norm_pre) && r.grad_norm_pre > o.clip_norm) {
        torch::NoGradGuard ng;
        const double coef = o.clip_norm / (r.grad_norm_pre + 1e-6);
        for (auto& p : params)
          if (p.grad().defined()) p.grad().mul_(coef);
      }
      r.grad_norm_post = grad_norm(params);
    }
    r.skipped = !(grads_finite && loss_finite && std::isfinite(r.grad_norm_pre));
    if (r.skipped) {
      ++skipped;
      // With loss scaling, an overflow is routine (the scale backs off); otherwise it is a NaN event.
      if (!loss_finite || !scaler.enabled()) ++nan_count;
      log_warn("train " + o.role + ": step " + std::to_string(step) + " skipped (non-finite " +
               (loss_finite ? "gradients" : "loss") + ")");
    } else {
      phase("optimizer step");
      opt.step();
      windows.add(r.loss, r.grad_norm_post);
    }
    scaler.update(!grads_finite);
    r.seen_tokens = seen;
    r.mode = to_string(model->quant_mode());
    ++step, ++steps_this_call;
    if (metrics) {
      std::fprintf(metrics, "%s\n", record_json(r).dump().c_str());
      std::fflush(metrics);
    }
    sinks.log(r.step, record_json(r));
    res.records.push_back(r);
    if (show_progress) {
      char extra[160];
      std::snprintf(extra, sizeof extra, "step %lld/%lld loss %.4f lr %.2e %s", (long long)step,
                    (long long)sched.total_steps, r.loss, r.lr, r.mode.c_str());
      progress.set(uint64_t(std::max<int64_t>(0, seen - seen_at_start)), extra);
    }
    if (writer && (step % o.ckpt_every == 0 || step == sched.total_steps)) {
      phase("checkpoint");
      save_checkpoint(role_dir, step, model, opt, state_json(), o.ckpt_keep);
      write_health();
    }
  }
  clear_crash_context();
  if (metrics) std::fclose(metrics);
  sinks.close();
  if (show_progress && steps_this_call > 0) progress.finish();
  write_health();
  // The other ranks return once rank 0's last checkpoint is on disk.
  if (o.dist) o.dist->barrier("the final checkpoint");
  res.steps = step, res.seen_tokens = seen, res.nan_count = nan_count, res.skipped_steps = skipped;
  res.flipped = flipped, res.flip_step = flip_step, res.flip_tokens = flip_tokens;
  res.finished = step >= sched.total_steps;
  res.tokens_per_s = writer ? res.health.value("tokens_per_s", 0.0) : health_json().value("tokens_per_s", 0.0);
  return res;
}

}  // namespace bkd

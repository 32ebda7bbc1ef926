// Greedy decoding speed of the LibTorch teacher (not a test): the key/value cache (IncrementalDecoder,
// what the local provider uses) side by side with a forward over the whole context per token (the
// obvious alternative, and what the provider did before), same prompt, same checkpoint, one run. Both
// must pick the same tokens. The teacher's decode tokens/s is the denominator of QEIspeed.
//
// usage: decode_bench [--ckpt DIR] [--prompt-tokens N] [--new-tokens N] [--repeats R] [--threads T] [--json PATH]
// --ckpt: a checkpoint or role folder (e.g. CKPT_DIR/teacher); left out, the cpu preset's teacher shape
// with random weights (speed does not depend on what the weights learned).
#include <torch/torch.h>

#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../bench_flags.h"

#include "core/config/settings.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/report/report.h"
#include "core/util/sysinfo.h"
#include "torch/model/checkpoint.h"
#include "torch/model/model_api.h"
#include "torch/train/trainer.h"

using namespace bkd;

namespace {

struct Args {
  std::string ckpt, json;
  int64_t prompt_tokens = 128, new_tokens = 64;
  int repeats = 3, threads = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for_each_flag(argc, argv, "decode_bench", [&](const std::string& name, const FlagValue& value) {
    if (name == "--ckpt") a.ckpt = value();
    else if (name == "--prompt-tokens") a.prompt_tokens = std::stoll(value());
    else if (name == "--new-tokens") a.new_tokens = std::stoll(value());
    else if (name == "--repeats") a.repeats = std::stoi(value());
    else if (name == "--threads") a.threads = std::stoi(value());
    else if (name == "--json") a.json = value();
    else return false;
    return true;
  });
  return a;
}

// The cpu preset's teacher with random weights, written where load_model reads it.
std::string write_random_teacher() {
  const char* base = std::getenv("TMPDIR");
  std::string root = std::string(base ? base : "/tmp") + "/bkd_decode_bench_XXXXXX";
  if (!::mkdtemp(root.data())) throw Error("cannot create a temp folder under " + root);
  LoadOptions o;
  o.env_file = join_path(root, ".env");
  write_file_atomic(o.env_file, "");
  o.presets_dir = std::string(BKD_SOURCE_DIR) + "/configs";
  o.use_process_env = false;
  o.env = {{"PRESET", "cpu"}, {"DRIVE_ROOT", root}};
  TrainOptions t = train_options_from_settings(Settings::load(o), "teacher", 50257);
  torch::manual_seed(1);
  Transformer model(t.model, QuantMode::FullPrecision);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.0));
  nlohmann::json state = {{"model_config", t.model}, {"quant_mode", to_string(QuantMode::FullPrecision)}};
  save_checkpoint(join_path(root, "teacher"), 0, model, opt, state, 1);
  return join_path(root, "teacher");
}

struct Decode {
  double seconds = 1e30;  // best over repeats, decode steps only (after the first token)
  std::vector<int32_t> tokens;
};

// Greedy decoding of n tokens after `prompt`; `next` maps a context to next-token logits.
template <typename Next>
Decode greedy(const std::vector<int32_t>& prompt, int64_t n, int repeats, Next next) {
  Decode d;
  for (int r = 0; r < repeats; ++r) {
    std::vector<int32_t> ctx = prompt, out;
    Timer t;
    for (int64_t i = 0; i < n; ++i) {
      if (i == 1) t.reset();  // the first token includes the prompt's prefill
      torch::Tensor l = next(ctx);
      const int32_t id = int32_t(l.argmax().item<int64_t>());
      out.push_back(id), ctx.push_back(id);
    }
    d.seconds = std::min(d.seconds, t.seconds());
    d.tokens = out;
  }
  return d;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    if (a.threads > 0) torch::set_num_threads(a.threads);
    const std::string dir = a.ckpt.empty() ? write_random_teacher() : a.ckpt;
    LoadedModel m = load_model(dir);
    const int64_t ctx_max = m.config.max_seq_len;
    if (a.new_tokens < 2 || a.prompt_tokens < 1 || a.prompt_tokens + a.new_tokens > ctx_max)
      throw Error("--prompt-tokens + --new-tokens must fit the model's context of " + std::to_string(ctx_max) +
                  " (and --new-tokens >= 2)");
    std::vector<int32_t> prompt;
    for (int64_t i = 0; i < a.prompt_tokens; ++i) prompt.push_back(int32_t((i * 7919 + 13) % 50000));

    const Decode full = greedy(prompt, a.new_tokens, a.repeats, [&](const std::vector<int32_t>& c) {
      torch::Tensor l = forward_logits(m, c);
      return l.select(0, l.size(0) - 1);
    });
    IncrementalDecoder dec(m);
    const Decode cached = greedy(prompt, a.new_tokens, a.repeats, [&](const std::vector<int32_t>& c) {
      if (c.size() == prompt.size()) dec.reset();  // each repeat starts cold
      return dec.next_logits(c);
    });
    const int64_t steps = a.new_tokens - 1;
    const double tps_full = double(steps) / full.seconds, tps_cached = double(steps) / cached.seconds;
    const bool same = full.tokens == cached.tokens;

    std::printf("Teacher greedy decode (%s: d=%lld L=%lld, %lld-class head, max_seq_len %lld), prompt %lld tokens, "
                "%lld new; decode steps after the first token, best of %d, %d torch threads\n",
                a.ckpt.empty() ? "random cpu-preset teacher" : a.ckpt.c_str(), (long long)m.config.d_model,
                (long long)m.config.n_layers, (long long)m.config.vocab_size, (long long)ctx_max,
                (long long)a.prompt_tokens, (long long)a.new_tokens, a.repeats, int(torch::get_num_threads()));
    std::printf("%-44s %10s %12s %10s\n", "method", "ms/token", "tokens/s", "speed-up");
    std::printf("%-44s %10.2f %12.1f %9.2fx\n", "forward over the whole context per token", 1e3 * full.seconds / steps,
                tps_full, 1.0);
    std::printf("%-44s %10.2f %12.1f %9.2fx\n", "key/value cache (IncrementalDecoder)", 1e3 * cached.seconds / steps,
                tps_cached, tps_cached / tps_full);
    std::printf("same greedy tokens: %s\n", same ? "yes" : "NO");

    if (!a.json.empty()) {
      nlohmann::json j = {{"bench", "decode"},
                          {"checkpoint", a.ckpt.empty() ? "random cpu-preset teacher" : a.ckpt},
                          {"model_config", m.config},
                          {"prompt_tokens", a.prompt_tokens},
                          {"new_tokens", a.new_tokens},
                          {"repeats", a.repeats},
                          {"threads", torch::get_num_threads()},
                          {"full_forward", {{"seconds", full.seconds}, {"tokens_per_s", tps_full}}},
                          {"kv_cache", {{"seconds", cached.seconds}, {"tokens_per_s", tps_cached}}},
                          {"speedup", tps_cached / tps_full},
                          {"same_tokens", same}};
      Report rep("decode_bench", nullptr);
      rep.body() = j;
      rep.write(a.json);
    }
    if (a.ckpt.empty()) std::filesystem::remove_all(parent_dir(dir));
    return same ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "decode_bench: %s\n", e.what());
    return 1;
  }
}

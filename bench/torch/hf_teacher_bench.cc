// Speed of a Hugging Face teacher in the project's transformer (not a test): float32 weights side by
// side with bf16 weights under autocast, one run, same folder and tokens. Per precision: teacher-
// forced scoring (one forward over --seq tokens: what `collect` does per sequence in score mode),
// greedy decode with the key/value cache (generate mode), the weights' memory, and bf16's top-1
// agreement with float32 on the scored tokens. The figures docs/HF_TEACHERS.md computes times from.
//
// usage: hf_teacher_bench --model DIR [--device cpu|cuda] [--seq N] [--repeats R] [--new-tokens N]
//                         [--threads T] [--precisions fp32,bf16] [--json PATH]
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../bench_flags.h"

#include "core/model/hf_config.h"
#include "core/report/report.h"
#include "core/util/error.h"
#include "core/util/sysinfo.h"
#include "torch/eval/eval_quality.h"
#include "torch/model/hf_model.h"
#include "torch/model/model_api.h"

using namespace bkd;

namespace {

struct Args {
  std::string model, json, device = "cpu", precisions = "fp32,bf16";
  int64_t seq = 256, new_tokens = 32;
  int repeats = 3, threads = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for_each_flag(argc, argv, "hf_teacher_bench", [&](const std::string& name, const FlagValue& value) {
    if (name == "--model") a.model = value();
    else if (name == "--device") a.device = value();
    else if (name == "--seq") a.seq = std::stoll(value());
    else if (name == "--repeats") a.repeats = std::stoi(value());
    else if (name == "--new-tokens") a.new_tokens = std::stoll(value());
    else if (name == "--threads") a.threads = std::stoi(value());
    else if (name == "--precisions") a.precisions = value();
    else if (name == "--json") a.json = value();
    else return false;
    return true;
  });
  if (a.model.empty()) throw Error("--model DIR is required (a Hugging Face model folder)");
  return a;
}

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

struct Result {
  std::string precision;
  double score_tps = 0, decode_tps = 0, bytes = 0;
  torch::Tensor argmax;  // [seq] of the scored tokens
};

Result run(const Args& a, const torch::Device& dev, torch::ScalarType dtype, const std::vector<int32_t>& ids) {
  HfLoadOptions o;
  o.device = dev;
  o.weight_dtype = dtype;
  LoadedModel m = load_hf_model(a.model, o);
  Result r;
  r.precision = dtype == torch::kFloat ? "fp32" : "bf16";
  r.bytes = double(model_bytes(m));
  torch::Tensor l = forward_model_logits(m, ids);  // warm-up (allocator, kernels)
  r.argmax = l.argmax(-1);
  sync(dev);
  double best = 1e30;
  for (int i = 0; i < a.repeats; ++i) {
    Timer t;
    l = forward_model_logits(m, ids);  // logits come back to the CPU, as collect takes them
    sync(dev);
    best = std::min(best, t.seconds());
  }
  r.score_tps = double(ids.size()) / best;
  best = 1e30;
  for (int i = 0; i < a.repeats; ++i) {
    IncrementalDecoder dec(m);
    std::vector<int32_t> ctx(ids.begin(), ids.begin() + 16);
    torch::Tensor next = dec.next_logits(ctx);  // the prompt, not timed
    Timer t;
    for (int64_t k = 0; k < a.new_tokens; ++k) {
      ctx.push_back(int32_t(next.argmax().item<int64_t>()));
      next = dec.next_logits(ctx);
    }
    best = std::min(best, t.seconds());
  }
  r.decode_tps = double(a.new_tokens) / best;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    if (a.threads > 0) torch::set_num_threads(a.threads);
    const torch::Device dev = a.device == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
    const HfModelInfo info = read_hf_config(a.model);
    if (a.seq < 17 || a.seq > info.config.max_seq_len) throw Error("--seq must be in 17.." + std::to_string(info.config.max_seq_len));
    std::vector<int32_t> ids;
    for (int64_t i = 0; i < a.seq; ++i) ids.push_back(int32_t((i * 7919 + 13) % std::min<int64_t>(info.config.vocab_size, 100000)));
    std::vector<Result> rs;
    std::stringstream list(a.precisions);
    for (std::string p; std::getline(list, p, ',');) rs.push_back(run(a, dev, p == "bf16" ? torch::kBFloat16 : torch::kFloat, ids));

    std::printf("Hugging Face teacher %s (%s, %lldM parameters) on %s, %d threads; scoring = one forward over %lld "
                "tokens, decode = %lld greedy tokens with the KV cache; best of %d\n",
                a.model.c_str(), info.architecture.c_str(), (long long)(info.config.parameter_count() / 1000000),
                dev.str().c_str(), int(torch::get_num_threads()), (long long)a.seq, (long long)a.new_tokens, a.repeats);
    std::printf("%-10s %14s %14s %12s %16s\n", "weights", "score tok/s", "decode tok/s", "weights MB", "top-1 vs first");
    nlohmann::json rows = nlohmann::json::array();
    for (const Result& r : rs) {
      const double agree = r.argmax.eq(rs.front().argmax).to(torch::kDouble).mean().item<double>();
      std::printf("%-10s %14.1f %14.1f %12.1f %16.4f\n", r.precision.c_str(), r.score_tps, r.decode_tps, r.bytes / 1e6, agree);
      rows.push_back({{"weights", r.precision}, {"score_tokens_per_s", r.score_tps}, {"decode_tokens_per_s", r.decode_tps},
                      {"weight_bytes", r.bytes}, {"top1_agreement_with_first", agree}});
    }
    if (!a.json.empty()) {
      Report rep("hf_teacher_bench", nullptr);
      rep.body() = {{"bench", "hf_teacher"}, {"model", a.model}, {"architecture", info.architecture},
                    {"model_config", info.config}, {"device", dev.str()}, {"threads", torch::get_num_threads()},
                    {"seq", a.seq}, {"new_tokens", a.new_tokens}, {"repeats", a.repeats}, {"rows", rows}};
      rep.write(a.json);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hf_teacher_bench: %s\n", e.what());
    return 1;
  }
}

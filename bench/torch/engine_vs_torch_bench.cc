// Student decode and prefill tokens/s, side by side in one run: the packed engine (A8, A4) vs the
// LibTorch eager forward of the same model (fp32, and bf16 under CPU autocast), 2 threads each.
// Shape: the default `cpu` preset student (vocab 8000, d 256, 6 layers, 8 heads, FFN 704).
// The LibTorch model has no KV cache, so its decode step is one forward over the whole context;
// the engine's decode step is one token against its cache. Prints the table; writes JSON to
// engine_vs_torch_bench.json unless --benchmark_out is given.
#include <ATen/autocast_mode.h>
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "core/engine/engine.h"
#include "torch/model/engine_export.h"
#include "torch/model/model.h"
#include "../bench_main.h"

namespace bkd {
namespace {

constexpr int64_t kPrompt = 128, kContext = 64;
constexpr int kThreads = 2;

ModelConfig shape() {
  ModelConfig c;
  c.vocab_size = 8000;
  c.d_model = 256;
  c.n_layers = 6;
  c.n_heads = 8;
  c.n_kv_heads = 8;
  c.ffn_dim = 704;
  c.max_seq_len = 256;
  return c;
}

struct Models {
  Transformer torch_model{nullptr};
  PackedModel packed;
  Models() {
    torch::manual_seed(1);
    torch_model = Transformer(shape(), QuantMode::TernaryA8);
    torch_model->eval();
    packed = pack_model(float_weights_of(torch_model));
  }
};
Models& models() {
  static Models m;
  return m;
}

std::vector<int32_t> tokens(int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>((i * 7919) % 8000);
  return t;
}

void set_tok_per_s(benchmark::State& st, int64_t tokens_per_iter) {
  st.counters["tok/s"] = benchmark::Counter(static_cast<double>(tokens_per_iter), benchmark::Counter::kIsIterationInvariantRate);
}

struct Autocast {
  explicit Autocast(bool on) : on_(on) {
    if (on_) {
      at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
      at::autocast::set_cpu_enabled(true);
    }
  }
  ~Autocast() {
    if (on_) {
      at::autocast::set_cpu_enabled(false);
      at::autocast::clear_cache();
    }
  }
  bool on_;
};

void torch_forward(benchmark::State& st, QuantMode mode, bool bf16, int64_t len, bool decode) {
  torch::set_num_threads(kThreads);
  Transformer& m = models().torch_model;
  m->set_quant_mode(mode);
  torch::NoGradGuard ng;
  Autocast ac(bf16);
  const auto t = tokens(len);
  torch::Tensor ids = torch::empty({1, len}, torch::kLong);
  for (int64_t i = 0; i < len; ++i) ids[0][i] = t[i];
  for (auto _ : st) benchmark::DoNotOptimize(m->forward(ids));
  set_tok_per_s(st, decode ? 1 : len);
}

void engine_prefill(benchmark::State& st, QuantMode mode) {
  EngineOptions o;
  o.mode = mode;
  o.threads = kThreads;
  Engine e(models().packed, o);
  const auto t = tokens(kPrompt);
  std::vector<float> logits(static_cast<size_t>(shape().vocab_size));
  for (auto _ : st) {
    e.reset();
    e.forward(t.data(), kPrompt, logits.data());
  }
  set_tok_per_s(st, kPrompt);
}

void engine_decode(benchmark::State& st, QuantMode mode) {
  EngineOptions o;
  o.mode = mode;
  o.threads = kThreads;
  Engine e(models().packed, o);
  const auto t = tokens(kContext + 1);
  std::vector<float> logits(static_cast<size_t>(shape().vocab_size));
  e.forward(t.data(), kContext, logits.data());
  for (auto _ : st) {
    e.rewind(kContext);
    e.forward(&t[kContext], 1, logits.data());
  }
  set_tok_per_s(st, 1);
}

void register_all() {
  for (QuantMode mode : {QuantMode::TernaryA8, QuantMode::TernaryA4}) {
    const std::string m = to_string(mode);
    benchmark::RegisterBenchmark(("engine/" + m + "/decode_ctx64").c_str(), engine_decode, mode)->Unit(benchmark::kMillisecond)->UseRealTime();
    benchmark::RegisterBenchmark(("engine/" + m + "/prefill128").c_str(), engine_prefill, mode)->Unit(benchmark::kMillisecond)->UseRealTime();
    for (bool bf16 : {false, true}) {
      const std::string p = std::string("torch_") + (bf16 ? "bf16" : "fp32") + "/" + m;
      benchmark::RegisterBenchmark((p + "/decode_ctx64").c_str(), torch_forward, mode, bf16, kContext + 1, true)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
      benchmark::RegisterBenchmark((p + "/prefill128").c_str(), torch_forward, mode, bf16, kPrompt, false)
          ->Unit(benchmark::kMillisecond)->UseRealTime();
    }
  }
}

}  // namespace
}  // namespace bkd

int main(int argc, char** argv) { return bkd::run_benchmarks(argc, argv, "engine_vs_torch_bench.json", bkd::register_all); }

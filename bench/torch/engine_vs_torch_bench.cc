// The packed engine vs LibTorch on the same student, side by side in one run: decode and prefill
// tokens/s at 1 and 2 threads, A8 and A4.
//   engine       the packed engine (integer ternary kernels, its own KV cache, fp32 head table)
//   torch_fp32   the LibTorch model with its KV cache (forward_cached), fake-quant in fp32, the
//                ternary matrices quantized once (cache_weights_for_inference)
//   torch_bf16   the same under CPU autocast to bf16
// Decode: one token at context 64 (each side's cache cut back to 64 every iteration), next-token
// logits included. Prefill: 128 prompt tokens from an empty cache with the logits of every position
// on both sides (the same work: torch's forward_cached returns them all).
//
// usage: engine_vs_torch_bench [--ckpt DIR] [google benchmark flags]
// --ckpt: a student checkpoint (step_N) or role folder (its latest), e.g. CKPT_DIR/student; left out,
// the cpu preset's student shape with random weights (speed does not depend on what they learned).
// Prints the table; writes JSON to engine_vs_torch_bench.json unless --benchmark_out is given.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <dlfcn.h>

#include <cstdio>
#include <string>
#include <vector>

#include "core/engine/engine.h"
#include "core/util/error.h"
#include "torch/model/autocast_compat.h"
#include "torch/model/checkpoint.h"
#include "torch/model/engine_export.h"
#include "torch/model/model.h"
#include "../bench_main.h"
#include "../bench_shapes.h"

namespace bkd {
namespace {

constexpr int64_t kPrompt = 128, kContext = 64;
std::string g_ckpt;  // --ckpt

struct Models {
  Transformer torch_model{nullptr};
  PackedModel packed;
  std::string source;
  Models() {
    if (g_ckpt.empty()) {
      torch::manual_seed(1);
      torch_model = Transformer(cpu_preset_student_shape(), QuantMode::TernaryA8);
      source = "cpu preset student shape, random weights";
    } else {
      // A role folder stands for its latest step_N.
      StudentCheckpoint ck = load_student_checkpoint(latest_checkpoint(g_ckpt).value_or(g_ckpt));
      torch_model = ck.model;
      source = ck.dir;
    }
    torch_model->eval();
    packed = pack_model(float_weights_of(torch_model), TableFormat::F32);
    torch_model->set_quant_mode(QuantMode::TernaryA8);
    const ModelConfig& c = torch_model->config();
    if (c.max_seq_len < kPrompt) throw Error("the student's context is shorter than the bench's 128-token prompt");
    std::printf("student: %s (d %lld, %lld layers, vocab %lld)\n", source.c_str(), static_cast<long long>(c.d_model),
                static_cast<long long>(c.n_layers), static_cast<long long>(c.vocab_size));
  }
};
Models& models() {
  static Models m;
  return m;
}

std::vector<int32_t> tokens(int64_t n) { return bench_tokens(n, models().torch_model->config().vocab_size); }

torch::Tensor ids_of(const std::vector<int32_t>& t, int64_t from, int64_t n) {
  torch::Tensor ids = torch::empty({1, n}, torch::kLong);
  for (int64_t i = 0; i < n; ++i) ids[0][i] = t[from + i];
  return ids;
}

// LibTorch at its best for inference: `threads` intra-op threads and as many OpenBLAS threads (Debian's
// LibTorch calls OpenBLAS, whose own pool otherwise spins on every core), no autograd, and the
// ternary matrices quantized once instead of per forward (cache_weights_for_inference).
Transformer& torch_model_for(QuantMode mode, int threads) {
  torch::set_num_threads(threads);
  using SetThreads = void (*)(int);
  if (auto set_blas = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set_blas(threads);
  Transformer& m = models().torch_model;
  if (m->quant_mode() != mode || !m->layers[0]->as<BlockImpl>()->cached_qkv.defined()) {
    m->set_quant_mode(mode);
    m->cache_weights_for_inference();
  }
  return m;
}

void torch_decode(benchmark::State& st, QuantMode mode, bool bf16, int threads) {
  Transformer& m = torch_model_for(mode, threads);
  torch::NoGradGuard ng;
  AutocastGuard ac(at::kCPU, at::kBFloat16, bf16);
  const auto t = tokens(kContext + 1);
  KvCache cache;
  m->forward_cached(ids_of(t, 0, kContext), cache);
  const torch::Tensor next = ids_of(t, kContext, 1);
  for (auto _ : st) {
    cache.truncate(kContext);
    benchmark::DoNotOptimize(m->forward_cached(next, cache));
  }
  set_tok_per_s(st, 1);
}

void torch_prefill(benchmark::State& st, QuantMode mode, bool bf16, int threads) {
  Transformer& m = torch_model_for(mode, threads);
  torch::NoGradGuard ng;
  AutocastGuard ac(at::kCPU, at::kBFloat16, bf16);
  const torch::Tensor ids = ids_of(tokens(kPrompt), 0, kPrompt);
  for (auto _ : st) {
    KvCache cache;
    benchmark::DoNotOptimize(m->forward_cached(ids, cache));
  }
  set_tok_per_s(st, kPrompt);
}

void engine_decode(benchmark::State& st, QuantMode mode, int threads) {
  run_engine_decode(st, models().packed, mode, threads, kContext);
}

void engine_prefill(benchmark::State& st, QuantMode mode, int threads) {
  run_engine_prefill(st, models().packed, mode, threads, kPrompt, /*all_logits=*/true);
}

void register_all() {
  models();  // load (and report) the student before any timing
  for (QuantMode mode : {QuantMode::TernaryA8, QuantMode::TernaryA4})
    for (int threads : {1, 2}) {
      const std::string tail = std::string("/") + to_string(mode) + "/threads:" + std::to_string(threads);
      auto add = [&](const std::string& name, auto fn, auto... args) {
        benchmark::RegisterBenchmark(name.c_str(), fn, args...)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.5);
      };
      add("engine/decode_ctx64" + tail, engine_decode, mode, threads);
      add("torch_fp32/decode_ctx64" + tail, torch_decode, mode, false, threads);
      add("torch_bf16/decode_ctx64" + tail, torch_decode, mode, true, threads);
      add("engine/prefill128" + tail, engine_prefill, mode, threads);
      add("torch_fp32/prefill128" + tail, torch_prefill, mode, false, threads);
      add("torch_bf16/prefill128" + tail, torch_prefill, mode, true, threads);
    }
}

}  // namespace
}  // namespace bkd

int main(int argc, char** argv) {
  // --ckpt DIR is ours; everything else goes to Google Benchmark.
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--ckpt" && i + 1 < argc) bkd::g_ckpt = argv[++i];
    else if (a.rfind("--ckpt=", 0) == 0) bkd::g_ckpt = a.substr(7);
    else rest.push_back(argv[i]);
  }
  try {
    return bkd::run_benchmarks(static_cast<int>(rest.size()), rest.data(), "engine_vs_torch_bench.json", bkd::register_all);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "engine_vs_torch_bench: %s\n", e.what());
    return 1;
  }
}

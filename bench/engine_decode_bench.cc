// Packed-engine decode and prefill at the cpu preset's student shape (vocab 8000, d 256, 6 layers,
// 8 heads, FFN 704, tied fp32 table: what `eval` times), 1 and 2 threads, A8 and A4. Weights are
// random in packed form: the kernels have no data-dependent branches, so speed does not depend on
// what the weights learned. A decode step is one token at context 64 (the KV cache rewound each
// iteration), the head included; prefill is 128 prompt tokens from an empty cache.
// Prints the table; writes JSON to engine_decode_bench.json unless --benchmark_out is given.
// Side by side with another build: run both binaries under the same flags (docs/ENGINE.md).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/engine/dryrun.h"
#include "core/engine/engine.h"
#include "bench_main.h"
#include "bench_shapes.h"

namespace bkd {
namespace {

constexpr int64_t kPrompt = 128, kContext = 64;

const PackedModel& model() {
  static const PackedModel m = [] {
    ThreadPool pool(1);
    return make_random_packed_model(cpu_preset_student_shape(), TableFormat::F32, 7, pool);
  }();
  return m;
}

void decode(benchmark::State& st, QuantMode mode, int threads) { run_engine_decode(st, model(), mode, threads, kContext); }

void prefill(benchmark::State& st, QuantMode mode, int threads) {
  run_engine_prefill(st, model(), mode, threads, kPrompt, /*all_logits=*/false);
}

void register_all() {
  for (QuantMode mode : {QuantMode::TernaryA8, QuantMode::TernaryA4})
    for (int threads : {1, 2}) {
      const std::string p = std::string(to_string(mode)) + "/threads:" + std::to_string(threads);
      benchmark::RegisterBenchmark((p + "/decode_ctx64").c_str(), decode, mode, threads)
          ->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(0.5);
      benchmark::RegisterBenchmark((p + "/prefill128").c_str(), prefill, mode, threads)
          ->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(0.5);
    }
}

}  // namespace
}  // namespace bkd

int main(int argc, char** argv) { return bkd::run_benchmarks(argc, argv, "engine_decode_bench.json", bkd::register_all); }

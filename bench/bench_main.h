#pragma once
// main() of the Google Benchmark programs: results also go to <default_json> (JSON) unless the
// command line names its own --benchmark_out=.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

namespace bkd {

inline int run_benchmarks(int argc, char** argv, const std::string& default_json, void (*register_all)()) {
  std::vector<char*> args(argv, argv + argc);
  bool has_out = false;
  for (int i = 1; i < argc; ++i) has_out |= std::string(argv[i]).rfind("--benchmark_out=", 0) == 0;
  std::string out = "--benchmark_out=" + default_json, fmt = "--benchmark_out_format=json";
  if (!has_out) {
    args.push_back(out.data());
    args.push_back(fmt.data());
  }
  int n = static_cast<int>(args.size());
  benchmark::Initialize(&n, args.data());
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace bkd

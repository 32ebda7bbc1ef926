#pragma once
// What machine we run on (for report headers and kernel dispatch) and how much memory we used.
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace bkd {

struct CpuFeatures {
  bool avx2 = false, fma = false, avx512f = false, avx512bw = false, avx512vl = false;
  bool avx512vnni = false, avx512bf16 = false, avxvnni = false, amx_tile = false, amx_int8 = false,
       amx_bf16 = false;
  std::vector<std::string> names() const;  // the flags that are set
};

const CpuFeatures& cpu_features();
std::string cpu_model();
int cpu_cores();            // online logical CPUs
uint64_t total_ram_bytes();
uint64_t peak_rss_bytes();     // VmHWM of this process
uint64_t current_rss_bytes();  // VmRSS
// CPU seconds used by the whole process (every thread): beside the wall time it tells a step that
// waited for the CPU from one that worked longer.
double process_cpu_seconds();

// Wall-clock stopwatch.
class Timer {
 public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  void reset() { start_ = std::chrono::steady_clock::now(); }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

std::string iso8601_utc_now();

}  // namespace bkd

#pragma once
// Run-time choice among the SSE2 / AVX2 / AVX-512 builds of a table of row kernels (the .inc files
// compiled once per instruction set, e.g. softmax_kernels.cc, topk_scoring.cc): which ones this CPU
// runs, the widest of them, or one by name (tests compare every build).
#include <cstddef>
#include <string>
#include <vector>

#include "core/util/error.h"

namespace bkd {

enum class RowIsa { Sse2, Avx2, Avx512 };

bool cpu_runs(RowIsa isa);  // SSE2 always (x86-64 baseline); the others from CPUID

// `table`: entries with `const char* name` and `RowIsa isa`, narrowest first. An empty name gives the
// widest this CPU runs; an unknown or unsupported one throws Error naming `what`.
template <class Entry, size_t N>
const Entry& pick_row_kernels(const Entry (&table)[N], const std::string& name, const char* what) {
  if (name.empty()) {
    static const Entry* best = [&] {
      const Entry* e = &table[0];
      for (const auto& c : table)
        if (cpu_runs(c.isa)) e = &c;
      return e;
    }();
    return *best;
  }
  for (const auto& c : table)
    if (name == c.name && cpu_runs(c.isa)) return c;
  throw Error(std::string(what) + " '" + name + "' is unknown or not supported by this CPU");
}

template <class Entry, size_t N>
std::vector<std::string> runnable_row_kernel_names(const Entry (&table)[N]) {
  std::vector<std::string> out;
  for (const auto& c : table)
    if (cpu_runs(c.isa)) out.push_back(c.name);
  return out;
}

}  // namespace bkd

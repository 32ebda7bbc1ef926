// Run-time choice of the kernel set from CPUID (core/util/sysinfo.h), with an override for tests
// and benchmarks: BKD_KERNELS=ref|avx2|avx512vnni.
#include <cstdlib>

#include "core/engine/kernels.h"
#include "core/util/error.h"
#include "core/util/sysinfo.h"

namespace bkd {
namespace {

bool can_run(const KernelSet* k) {
  if (!k) return false;
  const CpuFeatures& f = cpu_features();
  const std::string name = k->name;
  if (name == "avx2") return f.avx2 && f.fma;
  if (name == "avx512vnni") return f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
  return name == "ref";
}

}  // namespace

std::vector<const KernelSet*> runnable_kernel_sets() {
  std::vector<const KernelSet*> out{&ref_kernels()};
  for (const KernelSet* k : {avx2_kernels(), avx512_kernels()})
    if (can_run(k)) out.push_back(k);
  return out;
}

const KernelSet& kernels_by_name(const std::string& name) {
  std::string valid;
  for (const KernelSet* k : runnable_kernel_sets()) {
    if (name == k->name) return *k;
    valid += std::string(valid.empty() ? "" : ", ") + k->name;
  }
  throw Error("kernel set '" + name + "' is unknown or not supported by this CPU",
              "set BKD_KERNELS to one of: " + valid);
}

const KernelSet& best_kernels() {
  static const KernelSet* chosen = [] {
    const char* forced = std::getenv("BKD_KERNELS");
    if (forced && *forced) return &kernels_by_name(forced);
    return runnable_kernel_sets().back();
  }();
  return *chosen;
}

}  // namespace bkd

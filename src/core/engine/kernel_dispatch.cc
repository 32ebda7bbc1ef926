// Run-time choice of the kernel set from CPUID (core/util/sysinfo.h), with an override for tests
// and benchmarks: BKD_KERNELS=ref|avx2|avx512vnni|amx.
#include <cstdlib>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "core/engine/kernels.h"
#include "core/util/error.h"
#include "core/util/sysinfo.h"

namespace bkd {
namespace {

// Linux hands out the AMX tile data state (8 KiB per thread) only to processes that ask for it
// (arch_prctl ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA, Linux 5.16+); without it the first tile
// instruction raises SIGILL. The permission covers every thread of the process. Asked once.
bool amx_permitted() {
  static const bool ok = [] {
#if defined(__linux__) && defined(__x86_64__)
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtileData = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0;
#else
    return false;
#endif
  }();
  return ok;
}

// The AMX set uses palette 1 as every AMX CPU so far defines it (CPUID leaf 0x1D, subleaf 1): 8
// tiles of 16 rows x 64 bytes. A CPU reporting less does not get the set.
bool amx_palette_fits() {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid_count(0x1d, 1, &a, &b, &c, &d)) return false;
  const unsigned bytes_per_row = b & 0xffff, max_names = b >> 16, max_rows = c & 0xffff;
  return bytes_per_row >= 64 && max_names >= 8 && max_rows >= 16;
#else
  return false;
#endif
}

bool can_run(const KernelSet* k) {
  if (!k) return false;
  const CpuFeatures& f = cpu_features();
  const std::string name = k->name;
  const bool avx512 = f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni;
  if (name == "avx2") return f.avx2 && f.fma;
  if (name == "avx512vnni") return avx512;
  if (name == "amx") return avx512 && f.amx_tile && f.amx_int8 && amx_palette_fits() && amx_permitted();
  return name == "ref";
}

}  // namespace

std::vector<const KernelSet*> runnable_kernel_sets() {
  std::vector<const KernelSet*> out{&ref_kernels()};
  for (const KernelSet* k : {avx2_kernels(), avx512_kernels(), amx_kernels()})
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

#include "torch/kernels/row_isa.h"

#include "core/util/sysinfo.h"

namespace bkd {

bool cpu_runs(RowIsa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case RowIsa::Sse2: return true;
    case RowIsa::Avx2: return f.avx2 && f.fma;
    case RowIsa::Avx512: return f.avx512f && f.avx512bw && f.avx512vl;
  }
  return false;
}

}  // namespace bkd

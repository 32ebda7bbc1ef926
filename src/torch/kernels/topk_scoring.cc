#include "torch/kernels/topk_scoring.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "core/teacher/local_model.h"
#include "torch/kernels/row_isa.h"

namespace bkd {
namespace {

// Other is taken as (all - top-K mass) when it is at least this share of the mass.
constexpr double kOtherBySubtraction = 0.01;

struct Entry {
  float value;
  int32_t cls;  // model class
  int32_t id;   // external id
};

struct OnePass {
  float max = -INFINITY;  // the row's maximum
  double sum = 0;         // sum of exp(x - max)
  int64_t above_target = 0;
};

struct RowSums {
  double all = 0, below_kth = 0;  // sums of exp(x - m): every entry, entries under the k-th value
  int64_t at_or_above_kth = 0, above_target = 0;
};

}  // namespace

// The two passes over a row for each instruction set (same code, different vector width).
namespace row_passes_sse2 {
#define BKD_LANES 4
#include "torch/kernels/topk_row_passes.inc"
#undef BKD_LANES
}  // namespace row_passes_sse2

#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace row_passes_avx2 {
#define BKD_LANES 8
#include "torch/kernels/topk_row_passes.inc"
#undef BKD_LANES
}  // namespace row_passes_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl")
namespace row_passes_avx512 {
#define BKD_LANES 16
#include "torch/kernels/topk_row_passes.inc"
#undef BKD_LANES
}  // namespace row_passes_avx512
#pragma GCC pop_options

namespace {

struct RowKernels {
  const char* name;
  RowIsa isa;
  OnePass (*top_and_sums)(const float*, int64_t, int64_t, float, std::vector<Entry>&);
  RowSums (*row_sums)(const float*, int64_t, float, float, float);
};

const RowKernels kRowKernels[] = {
    {"sse2", RowIsa::Sse2, row_passes_sse2::top_and_sums, row_passes_sse2::row_sums},
    {"avx2", RowIsa::Avx2, row_passes_avx2::top_and_sums, row_passes_avx2::row_sums},
    {"avx512", RowIsa::Avx512, row_passes_avx512::top_and_sums, row_passes_avx512::row_sums},
};

}  // namespace

std::vector<std::string> runnable_row_kernels() { return runnable_row_kernel_names(kRowKernels); }

void score_row(const float* row, const RowClasses& c, int64_t k, int32_t target_class, size_t r, TopKScores& out,
               const char* kernel) {
  const int64_t nk = c.kept;
  const bool has_rare = c.rare_count > 0;
  const float vr = has_rare ? row[nk] - c.log_rare_count : -INFINITY;  // each rare id's logit

  const float tv = target_class < nk ? row[target_class] : vr;

  const RowKernels& kern = pick_row_kernels(kRowKernels, kernel ? kernel : "", "row kernel");
  std::vector<Entry> top;
  const OnePass pass = kern.top_and_sums(row, nk, std::min(k, nk), tv, top);
  if (c.kept_ids)
    for (auto& e : top) e.id = c.kept_ids[e.cls];
  int64_t kept_in_top = int64_t(top.size()), rare_in_top = 0;
  if (has_rare) {  // the rare ids all hold vr: merge the first of them in by (value desc, id asc)
    const int64_t nr = std::min(k, c.rare_count);
    std::vector<Entry> merged;
    merged.reserve(size_t(k));
    size_t i = 0;
    while (int64_t(merged.size()) < k && (i < top.size() || rare_in_top < nr)) {
      const bool kept_first = rare_in_top == nr || (i < top.size() && (top[i].value > vr || (top[i].value == vr &&
                                                                                              top[i].id < c.rare_ids[rare_in_top])));
      if (kept_first) merged.push_back(top[i++]);
      else merged.push_back({vr, int32_t(nk), c.rare_ids[rare_in_top++]});
    }
    kept_in_top = int64_t(i);
    top.swap(merged);
  }

  const float m = top.front().value, kth = top.back().value;  // m: the maximum over the external vocabulary
  const double rare_e = has_rare ? std::exp(double(vr) - double(m)) : 0.0;
  double all = (nk > 0 ? pass.sum * std::exp(double(pass.max) - double(m)) : 0.0) + double(c.rare_count) * rare_e;
  int64_t above = pass.above_target + (has_rare && vr > tv ? c.rare_count : 0);
  double top_mass = 0;
  for (const auto& e : top) top_mass += std::exp(double(e.value) - double(m));
  double rest = all - top_mass;
  // all - top carries the sum's relative error (~3e-7 of all); where Other is under 1% of the mass
  // that is too coarse, so sum the entries outside the top-K directly in a second pass.
  if (!(rest > kOtherBySubtraction * all)) {
    const RowSums s = kern.row_sums(row, nk, m, kth, tv);
    rest = s.below_kth;
    if (s.at_or_above_kth != kept_in_top) {
      // Kept entries tied with the k-th value outside the top-K: Other by index, in double.
      std::vector<char> in_top(size_t(nk), 0);
      for (const auto& e : top)
        if (e.cls < nk) in_top[size_t(e.cls)] = 1;
      rest = 0;
      for (int64_t v = 0; v < nk; ++v)
        if (!in_top[size_t(v)]) rest += std::exp(double(row[v]) - double(m));
    }
    rest += double(c.rare_count - rare_in_top) * rare_e;
    all = s.all + double(c.rare_count) * rare_e;
  }
  const double log_s = std::log(all), log_z = double(m) + log_s;
  for (int64_t j = 0; j < k; ++j) {
    out.ids[r * size_t(k) + size_t(j)] = top[size_t(j)].id;
    out.logprobs[r * size_t(k) + size_t(j)] = double(top[size_t(j)].value) - log_z;
  }
  out.log_other[r] = std::log(rest) - log_s;  // -inf when the top-K holds all the mass
  out.next_logprob[r] = double(tv) - log_z;
  out.next_rank[r] = int32_t(above + 1);
}

}  // namespace bkd

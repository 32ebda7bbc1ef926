// What the 7B decode GEMV pays for, against a plain read: every 7B projection (32 layers x q, k, v,
// o, gate, up, down; 1.62 GB of 4-row-tiled codes) read once by the plain read loop
// (KernelSet::read_bytes, the dry-run's probe before read_ternary) and once by a variant, alternated
// pass by pass so both see the same minute of a shared machine; each round gives the ratio variant
// time / plain-read time.
//
// Variants: the engine's GEMV and the dry-run's probe for it (KernelSet::read_ternary: the GEMV's
// loads and prefetches without its arithmetic); the GEMV loop with its two knobs apart (the next
// block's loads issued before this block's arithmetic or with it; prefetch into L1, L2 or none);
// the plain read with a prefetch into L1; and, as bounds on the instruction mix (their sums are
// wrong on purpose), the loop as it was before the loads went ahead with fewer VPDPBUSD per line.
//
// usage: gemv_mix_bench [rounds (default 12)]   -> a table, and gemv_mix_bench.json
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/engine/dryrun.h"
#include "core/engine/kernels.h"
#include "core/engine/thread_pool.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define BKD_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

namespace bkd {
namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

BKD_AVX512 inline __m512i dpbusd(__m512i acc, __m512i u8, __m512i s8) {
  asm("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "vm"(s8));
  return acc;
}

// The engine's 4-row GEMV loop (kernels_avx512.cc) with its knobs exposed: AHEAD, whether block
// b + 1's loads are issued before block b's arithmetic; HINT (_MM_HINT_T0: into L1, T1: into L2) and
// PF bytes of prefetch distance (0: none); FIELDS VPDPBUSD per weight line and MASK, whether each
// field is masked out first (fewer or no masks: wrong sums, a bound).
template <int HINT, int PF>
BKD_AVX512 inline __m512i fetch(const uint8_t* line) {
  if (PF) _mm_prefetch(reinterpret_cast<const char*>(line) + PF, static_cast<_mm_hint>(HINT));
  return _mm512_loadu_si512(line);
}

template <bool AHEAD, int HINT, int PF, int FIELDS = 4, bool MASK = true>
BKD_AVX512 void gemv_variant(const TernaryMatrix& w, const int8_t* x, int32_t* out) {
  constexpr int64_t kBlock = 4 * kTernaryBlockBytes;
  const int64_t blocks = w.blocks_per_row();
  const __m512i mask[4] = {_mm512_set1_epi8(0x03), _mm512_set1_epi8(0x0c), _mm512_set1_epi8(0x30),
                           _mm512_set1_epi8(static_cast<char>(0xc0))};
  const uint8_t* p = w.packed.data();
  for (int64_t t = 0; t < w.rows / kEngineTileRows; ++t) {
    __m512i acc[4][4], next[4];
    for (auto& row : acc)
      for (auto& a : row) a = _mm512_setzero_si512();
    if (AHEAD)
      for (int r = 0; r < 4; ++r) next[r] = fetch<HINT, PF>(p + r * kTernaryBlockBytes);
    for (int64_t b = 0; b < blocks; ++b, p += kBlock) {
      __m512i wv[4];
      for (int r = 0; r < 4; ++r) wv[r] = AHEAD ? next[r] : fetch<HINT, PF>(p + r * kTernaryBlockBytes);
      if (AHEAD && b + 1 < blocks)
        for (int r = 0; r < 4; ++r) next[r] = fetch<HINT, PF>(p + kBlock + r * kTernaryBlockBytes);
      for (int s = 0; s < FIELDS; ++s) {
        const __m512i xv = _mm512_loadu_si512(x + b * kTernaryBlock + s * 64);
        for (int r = 0; r < 4; ++r) acc[r][s] = dpbusd(acc[r][s], MASK ? _mm512_and_si512(wv[r], mask[s]) : wv[r], xv);
      }
    }
    for (int r = 0; r < 4; ++r)
      out[t * 4 + r] = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(acc[r][0], acc[r][1]), _mm512_add_epi32(acc[r][2], acc[r][3])));
  }
}

// The plain read loop with each line prefetched 16 KiB ahead into L1.
BKD_AVX512 void read_prefetch_l1(const TernaryMatrix& w, const int8_t*, int32_t* out) {
  const uint8_t* p = w.packed.data();
  const int64_t n = static_cast<int64_t>(w.bytes());
  __m512i s[4];
  for (auto& v : s) v = _mm512_setzero_si512();
  for (int64_t i = 0; i + 256 <= n; i += 256)
    for (int r = 0; r < 4; ++r) {
      _mm_prefetch(reinterpret_cast<const char*>(p) + i + 64 * r + 16384, _MM_HINT_T0);
      s[r] = _mm512_add_epi64(s[r], _mm512_loadu_si512(p + i + 64 * r));
    }
  out[0] = static_cast<int32_t>(_mm512_reduce_add_epi64(_mm512_add_epi64(_mm512_add_epi64(s[0], s[1]), _mm512_add_epi64(s[2], s[3]))));
}

struct Variant {
  const char* name;
  const char* what;
  void (*run)(const TernaryMatrix&, const int8_t*, int32_t*);
};

const KernelSet* g_kernels = nullptr;
void engine_kernel(const TernaryMatrix& w, const int8_t* x, int32_t* out) {
  static QuantizedActs acts;  // the codes of x, reshaped when the input width changes
  TernaryGemmArgs a;
  a.w = &w;
  a.x = &acts;
  a.n0 = 0;
  a.n1 = w.rows;
  a.acc = out;
  a.acc_stride = w.rows;
  if (acts.cols_padded != w.blocks_per_row() * kTernaryBlock) {
    shape_acts(ActBits::A8, 1, w.cols, &acts);
    std::copy(x, x + acts.cols_padded, acts.q.data());
    acts.sum[0] = 0;
  }
  g_kernels->gemv_a8(a);
}
void engine_probe(const TernaryMatrix& w, const int8_t*, int32_t* out) { out[0] = static_cast<int32_t>(g_kernels->read_ternary(w, 0, w.rows)); }

int run(int rounds) {
  const KernelSet* k = nullptr;
  for (const KernelSet* s : runnable_kernel_sets())
    if (std::string(s->name) == "avx512vnni") k = s;
  if (!k) {
    std::printf("gemv_mix_bench: needs the avx512vnni kernel set, which this CPU cannot run\n");
    return 0;
  }
  g_kernels = k;
  // The dry-run's random 7B model in the engine's layout; only its projections are read here.
  ThreadPool pool(0);
  PackedModel model = make_random_packed_model(llama7b_shape(), TableFormat::I8, 42, pool);
  model.use_engine_layout();
  std::vector<const TernaryMatrix*> mats;
  for (const PackedLayer& l : model.layers)
    for (const TernaryMatrix* m : l.projections()) mats.push_back(m);
  double total_bytes = 0;
  for (const TernaryMatrix* m : mats) total_bytes += static_cast<double>(m->bytes());
  const int64_t F = model.cfg.ffn_dim;
  std::mt19937_64 rng(1);
  std::vector<int8_t> x(static_cast<size_t>(ternary_padded_cols(F)));
  for (auto& v : x) v = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
  std::vector<int32_t> out(static_cast<size_t>(F));

  constexpr int T0 = _MM_HINT_T0, T1 = _MM_HINT_T1;
  const std::vector<Variant> variants = {
      {"kernel", "the engine's GEMV (avx512vnni gemv_a8), as it is", engine_kernel},
      {"probe", "the dry-run's probe for it (read_ternary: its loads and prefetches, no arithmetic)", engine_probe},
      {"ahead_l1", "the loop here: loads one block ahead, prefetch 16 KiB into L1 (the kernel's)", gemv_variant<true, T0, 16384>},
      {"ahead_l1_8k", "loads ahead, prefetch 8 KiB into L1", gemv_variant<true, T0, 8192>},
      {"ahead_l1_32k", "loads ahead, prefetch 32 KiB into L1", gemv_variant<true, T0, 32768>},
      {"ahead_l2", "loads ahead, prefetch 16 KiB into L2", gemv_variant<true, T1, 16384>},
      {"ahead_no_prefetch", "loads ahead, no prefetch", gemv_variant<true, T0, 0>},
      {"with_l1", "loads with their block, prefetch 16 KiB into L1", gemv_variant<false, T0, 16384>},
      {"with_l2", "loads with their block, prefetch 16 KiB into L2 (the kernel before)", gemv_variant<false, T1, 16384>},
      {"with_no_prefetch", "loads with their block, no prefetch", gemv_variant<false, T1, 0>},
      {"read_prefetch_l1", "the plain read, each line prefetched 16 KiB ahead into L1", read_prefetch_l1},
      {"bound_with_l2_2_fields", "as the kernel before, 2 masked fields per line (wrong sums)", gemv_variant<false, T1, 16384, 2>},
      {"bound_with_l2_1_field", "as the kernel before, 1 masked field per line (wrong sums)", gemv_variant<false, T1, 16384, 1>},
  };
  std::vector<std::vector<double>> ratio(variants.size());
  std::vector<double> read_gbps;
  uint64_t sink = 0;
  for (int r = 0; r < rounds; ++r)
    for (size_t v = 0; v < variants.size(); ++v) {
      double t0 = now_s();
      for (const TernaryMatrix* m : mats) sink += k->read_bytes(m->packed.data(), static_cast<int64_t>(m->bytes()));
      const double plain = now_s() - t0;
      t0 = now_s();
      for (const TernaryMatrix* m : mats) variants[v].run(*m, x.data(), out.data());
      ratio[v].push_back((now_s() - t0) / plain);
      read_gbps.push_back(total_bytes / plain * 1e-9);
      sink += static_cast<uint64_t>(out[0]);
    }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("gemv_mix_bench: %.2f GB of 7B projections, %d rounds, one thread; plain read %.1f-%.1f GB/s (checksum %llu)\n",
              total_bytes * 1e-9, rounds, *std::min_element(read_gbps.begin(), read_gbps.end()),
              *std::max_element(read_gbps.begin(), read_gbps.end()), static_cast<unsigned long long>(sink % 1000));
  std::printf("%-36s %8s %8s %8s  %s\n", "variant", "median", "min", "max", "time / the plain read's time over the same bytes");
  nlohmann::json j = {{"bytes", total_bytes}, {"rounds", rounds}, {"plain_read_gbps", read_gbps}, {"variants", nlohmann::json::array()}};
  for (size_t v = 0; v < variants.size(); ++v) {
    const auto [lo, hi] = std::minmax_element(ratio[v].begin(), ratio[v].end());
    std::printf("%-36s %8.3f %8.3f %8.3f  %s\n", variants[v].name, median(ratio[v]), *lo, *hi, variants[v].what);
    j["variants"].push_back({{"name", variants[v].name}, {"what", variants[v].what}, {"ratio_to_plain_read", ratio[v]}, {"median", median(ratio[v])}});
  }
  std::ofstream("gemv_mix_bench.json") << j.dump(2) << "\n";
  std::printf("wrote gemv_mix_bench.json\n");
  return 0;
}

}  // namespace
}  // namespace bkd

int main(int argc, char** argv) { return bkd::run(argc > 1 ? std::max(1, std::atoi(argv[1])) : 12); }
#else
int main() {
  std::printf("gemv_mix_bench: x86-64 with GCC only\n");
  return 0;
}
#endif

// What the 7B decode GEMV pays for, against the dry-run's bandwidth probe: every 7B projection (32
// layers x q, k, v, o, gate, up, down; 1.62 GB of 4-row-tiled codes) read once by the probe
// (KernelSet::read_bytes) and once by a GEMV variant, alternated pass by pass so both see the same
// minute of a shared machine; each round gives the ratio variant time / probe time.
//
// Variants: the engine's AVX-512 kernel as it is; the same loop without its software prefetch; and,
// as bounds on what the instruction mix costs (their sums are wrong on purpose), the loop with fewer
// VPDPBUSD per 64-byte line or without the masks that split a byte's four 2-bit fields.
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

// The engine's 4-row GEMV loop (kernels_avx512.cc) with its knobs exposed: PF bytes of prefetch
// distance (0: none), FIELDS VPDPBUSD per weight line, MASK whether each field is masked out first.
template <int PF, int FIELDS, bool MASK>
BKD_AVX512 void gemv_variant(const TernaryMatrix& w, const int8_t* x, int32_t* out) {
  const int64_t blocks = w.blocks_per_row();
  const __m512i mask[4] = {_mm512_set1_epi8(0x03), _mm512_set1_epi8(0x0c), _mm512_set1_epi8(0x30),
                           _mm512_set1_epi8(static_cast<char>(0xc0))};
  const uint8_t* p = w.packed.data();
  for (int64_t t = 0; t < w.rows / kEngineTileRows; ++t) {
    __m512i acc[4][4];
    for (auto& row : acc)
      for (auto& a : row) a = _mm512_setzero_si512();
    for (int64_t b = 0; b < blocks; ++b, p += 4 * kTernaryBlockBytes) {
      __m512i wv[4];
      for (int r = 0; r < 4; ++r) {
        wv[r] = _mm512_loadu_si512(p + r * kTernaryBlockBytes);
        if (PF) _mm_prefetch(reinterpret_cast<const char*>(p) + r * kTernaryBlockBytes + PF, _MM_HINT_T1);
      }
      for (int s = 0; s < FIELDS; ++s) {
        const __m512i xv = _mm512_loadu_si512(x + b * kTernaryBlock + s * 64);
        for (int r = 0; r < 4; ++r) acc[r][s] = dpbusd(acc[r][s], MASK ? _mm512_and_si512(wv[r], mask[s]) : wv[r], xv);
      }
    }
    for (int r = 0; r < 4; ++r)
      out[t * 4 + r] = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_add_epi32(acc[r][0], acc[r][1]), _mm512_add_epi32(acc[r][2], acc[r][3])));
  }
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

  const std::vector<Variant> variants = {
      {"kernel", "the engine's GEMV (avx512vnni gemv_a8), as it is", engine_kernel},
      {"loop", "the same loop here, prefetch 16 KiB ahead into L2", gemv_variant<16384, 4, true>},
      {"loop_no_prefetch", "the same loop without the prefetch", gemv_variant<0, 4, true>},
      {"bound_4_fields_no_masks", "4 VPDPBUSD per line on the unmasked bytes (wrong sums)", gemv_variant<16384, 4, false>},
      {"bound_2_fields", "2 masked fields per line (wrong sums)", gemv_variant<16384, 2, true>},
      {"bound_1_field", "1 masked field per line (wrong sums)", gemv_variant<16384, 1, true>},
      {"bound_1_field_no_mask_no_prefetch", "1 VPDPBUSD per line on the loaded bytes, no prefetch (wrong sums)", gemv_variant<0, 1, false>},
  };
  std::vector<std::vector<double>> ratio(variants.size());
  std::vector<double> probe_gbps;
  uint64_t sink = 0;
  for (int r = 0; r < rounds; ++r)
    for (size_t v = 0; v < variants.size(); ++v) {
      double t0 = now_s();
      for (const TernaryMatrix* m : mats) sink += k->read_bytes(m->packed.data(), static_cast<int64_t>(m->bytes()));
      const double probe = now_s() - t0;
      t0 = now_s();
      for (const TernaryMatrix* m : mats) variants[v].run(*m, x.data(), out.data());
      ratio[v].push_back((now_s() - t0) / probe);
      probe_gbps.push_back(total_bytes / probe * 1e-9);
      sink += static_cast<uint64_t>(out[0]);
    }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("gemv_mix_bench: %.2f GB of 7B projections, %d rounds, one thread; probe %.1f-%.1f GB/s (checksum %llu)\n",
              total_bytes * 1e-9, rounds, *std::min_element(probe_gbps.begin(), probe_gbps.end()),
              *std::max_element(probe_gbps.begin(), probe_gbps.end()), static_cast<unsigned long long>(sink % 1000));
  std::printf("%-36s %8s %8s %8s  %s\n", "variant", "median", "min", "max", "time / the probe's time over the same bytes");
  nlohmann::json j = {{"bytes", total_bytes}, {"rounds", rounds}, {"probe_gbps", probe_gbps}, {"variants", nlohmann::json::array()}};
  for (size_t v = 0; v < variants.size(); ++v) {
    const auto [lo, hi] = std::minmax_element(ratio[v].begin(), ratio[v].end());
    std::printf("%-36s %8.3f %8.3f %8.3f  %s\n", variants[v].name, median(ratio[v]), *lo, *hi, variants[v].what);
    j["variants"].push_back({{"name", variants[v].name}, {"what", variants[v].what}, {"ratio_to_probe", ratio[v]}, {"median", median(ratio[v])}});
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

// Kernel table of the packed engine: every kernel set this CPU runs x {A8, A4} x {GEMV (1 token),
// GEMM (16 tokens)} x LLaMA-7B projection shapes, single-threaded, plus the 8-bit head, and the
// elementwise entries (attention of one head, the SiLU gate, the A8 and A4 quantizers) of every set.
// Counters: GOPS (2 ops per multiply-add) and GB/s of packed weight bytes streamed; beside them a
// read-only stream of the same bytes (the set's bandwidth probe), the floor a GEMV can approach.
// The 7B shapes mostly stay in cache here; the `from_dram` entries stream a 256 MiB matrix, in the
// engine's 4-row tiles and row-major (the layout before them), beside the probe over the same bytes.
// Prints the table; writes JSON to engine_kernels_bench.json unless --benchmark_out is given.
#include <benchmark/benchmark.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "core/engine/aligned_buffer.h"
#include "core/engine/kernels.h"
#include "bench_main.h"

namespace bkd {
namespace {

struct Shape {
  const char* name;
  int64_t n, k;
};
const Shape kShapes[] = {{"wq_4096x4096", 4096, 4096}, {"w_up_11008x4096", 11008, 4096}, {"w_down_4096x11008", 4096, 11008}};
const Shape kDramShape = {"262144x4096", 262144, 4096};  // 256 MiB packed: 8x the largest L3 here

// Random codes in the engine's layout (ternary_format.h), or in `tiles` rows per tile. The bytes are
// drawn whole from the 81 that hold four valid codes (the kernels have no data-dependent branches).
TernaryMatrix random_matrix(int64_t n, int64_t k, int64_t tiles = kEngineTileRows) {
  std::vector<uint8_t> valid;
  for (int v = 0; v < 256; ++v)
    if ((v & 3) != 3 && (v >> 2 & 3) != 3 && (v >> 4 & 3) != 3 && (v >> 6) != 3) valid.push_back(static_cast<uint8_t>(v));
  TernaryMatrix m;
  m.allocate(n, k);
  m.scale = 0.01f;
  std::mt19937_64 rng(1);
  for (uint64_t i = 0; i < m.bytes(); ++i) m.packed.data()[i] = valid[rng() % valid.size()];
  m.retile(tiles);
  return m;
}

QuantizedActs random_acts(ActBits bits, int64_t m, int64_t k) {
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(m * k));
  for (auto& v : x) v = nd(rng);
  QuantizedActs q;
  quantize_acts(bits, x.data(), m, k, k, &q);
  return q;
}

void bench_ternary(benchmark::State& st, const KernelSet* ks, ActBits bits, int64_t m, Shape s,
                   int64_t tiles) {
  const TernaryMatrix w = random_matrix(s.n, s.k, tiles);
  QuantizedActs x = random_acts(bits, m, s.k);
  if (m > 1 && ks->prepare_gemm) ks->prepare_gemm(x);  // once per region in the engine, so not timed
  std::vector<int32_t> acc(static_cast<size_t>(m * s.n));
  TernaryGemmArgs a;
  a.w = &w;
  a.x = &x;
  a.n0 = 0;
  a.n1 = s.n;
  a.acc = acc.data();
  a.acc_stride = s.n;
  const TernaryKernelFn fn = ks->ternary_for(x);
  for (auto _ : st) {
    fn(a);
    benchmark::DoNotOptimize(acc.data());
    benchmark::ClobberMemory();
  }
  const double macs = static_cast<double>(m * s.n * s.k);
  st.counters["GOPS"] = benchmark::Counter(2 * macs * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.bytes()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// The floor a GEMV can reach: stream the same packed bytes with the set's read probe, no arithmetic.
void bench_read(benchmark::State& st, const KernelSet* ks, Shape s) {
  const TernaryMatrix w = random_matrix(s.n, s.k);
  uint64_t sink = 0;
  for (auto _ : st) {
    sink += ks->read_bytes(w.packed.data(), static_cast<int64_t>(w.bytes()));
    benchmark::DoNotOptimize(sink);
  }
  st.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.bytes()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void bench_head(benchmark::State& st, const KernelSet* ks, TableFormat f) {
  const int64_t V = 32000, D = 4096;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(V * D)), x(static_cast<size_t>(D)), out(static_cast<size_t>(V));
  for (auto& v : w) v = nd(rng);
  for (auto& v : x) v = nd(rng);
  const EmbeddingTable t = make_table(f, w.data(), V, D);
  w.clear();
  w.shrink_to_fit();
  HeadArgs a;
  a.table = &t;
  a.x = x.data();
  a.rows = 1;
  a.x_stride = D;
  a.n0 = 0;
  a.n1 = V;
  a.out = out.data();
  a.out_stride = V;
  for (auto _ : st) {
    ks->head(a);
    benchmark::DoNotOptimize(out.data());
  }
  st.counters["GOPS"] = benchmark::Counter(2.0 * V * D * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.counters["GB/s"] = benchmark::Counter(static_cast<double>(t.bytes()) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// One decode step's attention for one head: a query against n cached positions (7B: head_dim 128).
void bench_attend(benchmark::State& st, const KernelSet* ks, int64_t n) {
  const int64_t hd = 128;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> q(hd), kc(static_cast<size_t>(n * hd)), v(static_cast<size_t>(n * hd)), scores(n), out(hd);
  for (auto* vec : {&q, &kc, &v})
    for (float& x : *vec) x = nd(rng);
  AttendArgs a;
  a.q = q.data(), a.k = kc.data(), a.k_stride = hd, a.v = v.data(), a.v_stride = hd, a.n = n, a.head_dim = hd;
  a.scale = 0.088f, a.scores = scores.data(), a.out = out.data();
  for (auto _ : st) {
    ks->attend(a);
    benchmark::DoNotOptimize(out.data());
  }
  st.counters["positions/s"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate);
}

// One decode step's attention over a whole layer, its KV cache streamed from memory as in a decode
// step (the weights stream in between evicts it): 32 heads (LLaMA-7B, MHA) x n positions, K and V
// each [head][pos][128] as the engine stores them ("head_major") or [pos][head][128] ("pos_major",
// the layout before), the same kernel with another stride. Each iteration takes the next of enough layers to fill
// 1 GiB, so no layer is in cache. GB/s counts the K and V bytes read; `read_only_from_dram/kv`
// streams the same bytes with the set's read probe: the floor attention can approach.
constexpr int64_t kKvHeads = 32, kKvHeadDim = 128;

struct KvCache {
  int64_t n, layers;
  AlignedBuffer<float> k, v;  // layers x n x kKvHeads x kKvHeadDim each
  explicit KvCache(int64_t positions) : n(positions), layers(std::max<int64_t>(2, (int64_t{1} << 30) / (2 * layer_floats() * 4))) {
    const size_t count = static_cast<size_t>(layers * layer_floats());
    k.resize(count), v.resize(count);
    // Cheap deterministic values (a normal draw of 512 M floats takes longer than the benchmark).
    for (size_t i = 0; i < count; ++i) k.data()[i] = static_cast<float>(static_cast<int>(i % 251) - 125) * 0.01f;
    for (size_t i = 0; i < count; ++i) v.data()[i] = static_cast<float>(static_cast<int>(i % 241) - 120) * 0.01f;
  }
  int64_t layer_floats() const { return n * kKvHeads * kKvHeadDim; }
};

void bench_attend_layer(benchmark::State& st, const KernelSet* ks, int64_t n, bool head_major) {
  const KvCache kv(n);
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> q(kKvHeads * kKvHeadDim), scores(n), out(kKvHeads * kKvHeadDim);
  for (float& x : q) x = nd(rng);
  auto head_offset = [&](int64_t h) { return head_major ? h * n * kKvHeadDim : h * kKvHeadDim; };
  int64_t layer = 0;
  for (auto _ : st) {
    const float* kl = kv.k.data() + layer * kv.layer_floats();
    const float* vl = kv.v.data() + layer * kv.layer_floats();
    for (int64_t h = 0; h < kKvHeads; ++h) {
      AttendArgs a;
      a.k_stride = a.v_stride = head_major ? kKvHeadDim : kKvHeads * kKvHeadDim;
      a.q = q.data() + h * kKvHeadDim, a.k = kl + head_offset(h), a.v = vl + head_offset(h), a.n = n, a.head_dim = kKvHeadDim;
      a.scale = 0.088f, a.scores = scores.data(), a.out = out.data() + h * kKvHeadDim;
      if (h + 1 < kKvHeads)  // as the engine does: the next head's rows, to prefetch
        a.next_k = kl + head_offset(h + 1), a.next_v = vl + head_offset(h + 1), a.next_n = n;
      ks->attend(a);
    }
    benchmark::DoNotOptimize(out.data());
    layer = (layer + 1) % kv.layers;
  }
  st.counters["GB/s"] = benchmark::Counter(2.0 * kv.layer_floats() * sizeof(float) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

void bench_read_kv(benchmark::State& st, const KernelSet* ks, int64_t n) {
  const KvCache kv(n);
  const int64_t bytes = kv.layer_floats() * static_cast<int64_t>(sizeof(float));
  uint64_t sink = 0;
  int64_t layer = 0;
  for (auto _ : st) {
    sink += ks->read_bytes(reinterpret_cast<const uint8_t*>(kv.k.data() + layer * kv.layer_floats()), bytes);
    sink += ks->read_bytes(reinterpret_cast<const uint8_t*>(kv.v.data() + layer * kv.layer_floats()), bytes);
    benchmark::DoNotOptimize(sink);
    layer = (layer + 1) % kv.layers;
  }
  st.counters["GB/s"] = benchmark::Counter(2.0 * static_cast<double>(bytes) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// The FFN gate of one 7B token (11008 wide) and the A8 and A4 quantizers of one 4096-wide row.
void bench_silu(benchmark::State& st, const KernelSet* ks) {
  std::vector<float> g(11008), u(11008, 0.5f), x(11008);
  for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<float>(int(i % 200) - 100) * 0.05f;
  for (auto _ : st) {
    x = g;
    ks->silu_gate(x.data(), u.data(), static_cast<int64_t>(x.size()));
    benchmark::DoNotOptimize(x.data());
  }
  st.counters["values/s"] = benchmark::Counter(double(g.size()), benchmark::Counter::kIsIterationInvariantRate);
}

void bench_quantize(benchmark::State& st, const KernelSet* ks, ActBits bits) {
  std::vector<float> x(4096);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(int(i * 37 % 201) - 100) * 0.03f;
  std::vector<int8_t> q(x.size());
  float mult = 0;
  const QuantizeRowFn fn = bits == ActBits::A8 ? ks->quantize_a8 : ks->quantize_a4;
  for (auto _ : st) benchmark::DoNotOptimize(fn(x.data(), static_cast<int64_t>(x.size()), q.data(), &mult));
  st.counters["values/s"] = benchmark::Counter(double(x.size()), benchmark::Counter::kIsIterationInvariantRate);
}

#if defined(__x86_64__) && defined(__GNUC__)
// The ceiling of any VNNI ternary kernel on this core: VPDPBUSD on 16 independent accumulators,
// nothing else (GOPS = 2 x 64 multiply-adds per instruction). A GEMM tile's GOPS against this is
// its share of the peak; a 7B prompt's ternary multiply-adds at this rate bound its prefill.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void bench_vpdpbusd_peak(benchmark::State& st) {
  // Sixteen named accumulators (an array would live in memory: a store-to-load chain per step).
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0, a8 = a0, a9 = a0,
          a10 = a0, a11 = a0, a12 = a0, a13 = a0, a14 = a0, a15 = a0;
  const __m512i u = _mm512_set1_epi8(1), s = _mm512_set1_epi8(-1);
  constexpr int64_t kIters = 1 << 16;
#define BKD_DP(a) asm volatile("vpdpbusd %1, %2, %0" : "+v"(a) : "v"(u), "v"(s));
  for (auto _ : st) {
    for (int64_t it = 0; it < kIters; ++it) {
      BKD_DP(a0) BKD_DP(a1) BKD_DP(a2) BKD_DP(a3) BKD_DP(a4) BKD_DP(a5) BKD_DP(a6) BKD_DP(a7)
      BKD_DP(a8) BKD_DP(a9) BKD_DP(a10) BKD_DP(a11) BKD_DP(a12) BKD_DP(a13) BKD_DP(a14) BKD_DP(a15)
    }
  }
#undef BKD_DP
  const __m512i sum = _mm512_add_epi32(
      _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                       _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7))),
      _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a8, a9), _mm512_add_epi32(a10, a11)),
                       _mm512_add_epi32(_mm512_add_epi32(a12, a13), _mm512_add_epi32(a14, a15))));
  benchmark::DoNotOptimize(sum);
  st.counters["GOPS"] = benchmark::Counter(2.0 * 64 * 16 * kIters * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
#endif

void register_all() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (avx512_kernels() && __builtin_cpu_supports("avx512vnni"))
    benchmark::RegisterBenchmark("avx512vnni/vpdpbusd_peak", bench_vpdpbusd_peak)->Unit(benchmark::kMillisecond)->MinTime(0.3);
#endif
  for (const KernelSet* ks : runnable_kernel_sets()) {
    const bool ref = std::string(ks->name) == "ref";
    for (ActBits bits : {ActBits::A8, ActBits::A4})
      for (int64_t m : {1, 16, 64})  // decode; a short prompt; a prompt that fills the AMX set's four token tiles
        for (const Shape& s : kShapes) {
          if (ref && (m > 1 || s.n > 4096 || s.k > 4096)) continue;  // the scalar reference is slow
          const std::string name = std::string(ks->name) + "/" + to_string(bits) + (m == 1 ? "/gemv/" : "/gemm" + std::to_string(m) + "/") + s.name;
          benchmark::RegisterBenchmark(name.c_str(), bench_ternary, ks, bits, m, s, kEngineTileRows)->Unit(benchmark::kMillisecond)->MinTime(0.3);
        }
    if (!ref)
      for (const Shape& s : kShapes)
        benchmark::RegisterBenchmark((std::string(ks->name) + "/read_only/" + s.name).c_str(), bench_read, ks, s)
            ->Unit(benchmark::kMillisecond)
            ->MinTime(0.3);
    if (!ref) {
      for (int64_t tiles : {kEngineTileRows, int64_t{1}}) {
        const std::string layout = tiles == 1 ? "rows" : "tiles" + std::to_string(tiles);
        benchmark::RegisterBenchmark((std::string(ks->name) + "/a8/gemv_from_dram/" + layout + "/" + kDramShape.name).c_str(),
                                     bench_ternary, ks, ActBits::A8, int64_t{1}, kDramShape, tiles)
            ->Unit(benchmark::kMillisecond)
            ->MinTime(1.0);
      }
      benchmark::RegisterBenchmark((std::string(ks->name) + "/read_only_from_dram/" + kDramShape.name).c_str(), bench_read, ks, kDramShape)
          ->Unit(benchmark::kMillisecond)
          ->MinTime(1.0);
    }
    if (!ref)
      for (TableFormat f : {TableFormat::I8, TableFormat::BF16})
        benchmark::RegisterBenchmark((std::string(ks->name) + "/head_" + to_string(f) + "/32000x4096").c_str(), bench_head, ks, f)
            ->Unit(benchmark::kMillisecond)
            ->MinTime(0.3);
    // The elementwise entries, the reference included: what each SIMD set buys over it.
    for (int64_t n : {256, 2048})
      benchmark::RegisterBenchmark((std::string(ks->name) + "/attend/hd128_n" + std::to_string(n)).c_str(), bench_attend, ks, n)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.3);
    for (int64_t n : {int64_t{24}, int64_t{1024}}) {  // the dry-run's short context, and a long one
      if (ref) break;
      for (bool head_major : {false, true})
        benchmark::RegisterBenchmark((std::string(ks->name) + "/attend_layer_from_dram/" + (head_major ? "head_major" : "pos_major") +
                                      "/32x128_n" + std::to_string(n)).c_str(),
                                     bench_attend_layer, ks, n, head_major)
            ->Unit(benchmark::kMicrosecond)
            ->MinTime(1.0);
      benchmark::RegisterBenchmark((std::string(ks->name) + "/read_only_from_dram/kv_32x128_n" + std::to_string(n)).c_str(), bench_read_kv, ks, n)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(1.0);
    }
    benchmark::RegisterBenchmark((std::string(ks->name) + "/silu_gate/11008").c_str(), bench_silu, ks)
        ->Unit(benchmark::kMicrosecond)
        ->MinTime(0.3);
    for (ActBits bits : {ActBits::A8, ActBits::A4})
      benchmark::RegisterBenchmark((std::string(ks->name) + "/quantize_" + to_string(bits) + "/4096").c_str(), bench_quantize, ks, bits)
          ->Unit(benchmark::kMicrosecond)
          ->MinTime(0.3);
  }
}

}  // namespace
}  // namespace bkd

int main(int argc, char** argv) { return bkd::run_benchmarks(argc, argv, "engine_kernels_bench.json", bkd::register_all); }

// Every kernel set this CPU runs against the scalar reference: bit-exact int32 for the ternary
// kernels over odd sizes, tails, edge tiles and worst-case magnitudes; a derived float tolerance
// for the head kernels.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/engine/kernels.h"
#include "core/util/error.h"

namespace bkd {
namespace {

// Activations with codes drawn directly (so A8 reaches -128 and 127 and A4 -8 and 7).
QuantizedActs random_acts(ActBits bits, int64_t rows, int64_t cols, std::mt19937& rng) {
  QuantizedActs q;
  q.bits = bits;
  q.rows = rows;
  q.cols = cols;
  q.cols_padded = ternary_padded_cols(cols);
  q.q.resize(static_cast<size_t>(rows * q.cols_padded));
  q.mult.assign(static_cast<size_t>(rows), 0.01f);
  q.sum.assign(static_cast<size_t>(rows), 0);
  const int lo = bits == ActBits::A8 ? -128 : -8, hi = bits == ActBits::A8 ? 127 : 7;
  for (int64_t m = 0; m < rows; ++m)
    for (int64_t k = 0; k < q.cols_padded; ++k) {
      const int v = k < cols ? lo + static_cast<int>(rng() % (hi - lo + 1)) : 0;
      q.q[m * q.cols_padded + k] = static_cast<int8_t>(v);
      q.sum[m] += v;
    }
  return q;
}

// `tiles`: the in-memory layout (ternary_format.h); 1 is row-major.
TernaryMatrix random_ternary(int64_t rows, int64_t cols, std::mt19937& rng, int64_t tiles = 1) {
  std::vector<int8_t> w(static_cast<size_t>(rows * cols));
  for (auto& x : w) x = static_cast<int8_t>(static_cast<int>(rng() % 3) - 1);
  TernaryMatrix m = pack_ternary(w.data(), rows, cols, 0.03f);
  m.retile(tiles);
  return m;
}

std::vector<int32_t> run(TernaryKernelFn fn, const TernaryMatrix& w, const QuantizedActs& x, int64_t n0, int64_t n1) {
  const int64_t stride = w.rows + 3;  // a stride wider than the output catches stray writes
  std::vector<int32_t> acc(static_cast<size_t>(x.rows * stride), -7777);
  TernaryGemmArgs a;
  a.w = &w;
  a.x = &x;
  a.n0 = n0;
  a.n1 = n1;
  a.acc = acc.data();
  a.acc_stride = stride;
  fn(a);
  return acc;
}

// "amx-emulated" is the AMX set's tile program on emulated tile registers (it needs only the
// AVX-512 set), so its layout and edges are checked on every AVX-512 CPU; "amx" runs on the tile unit.
const KernelSet* runnable_set(const std::string& name) {
  for (const KernelSet* s : runnable_kernel_sets())
    if (name == s->name) return s;
  if (name == "amx-emulated" && runnable_set("avx512vnni")) return amx_emulated_kernels();
  return nullptr;
}

class EngineKernels : public ::testing::TestWithParam<std::string> {
 protected:
  const KernelSet& k() { return *runnable_set(GetParam()); }
  void SetUp() override {
    if (!runnable_set(GetParam())) GTEST_SKIP() << "this CPU cannot run the " << GetParam() << " kernels";
  }
};

// Every row-tile layout the engine can hold (1 = row-major, 4 = the engine's, 2 for the addressing's
// generality) against the reference on the row-major matrix.
TEST_P(EngineKernels, TernaryBitExactOverOddSizesAndTails) {
  std::mt19937 rng(42);
  const KernelSet& ref = ref_kernels();
  for (ActBits bits : {ActBits::A8, ActBits::A4})
    for (int64_t K : {1, 3, 64, 255, 256, 257, 511, 1000, 1024, 1025, 4109})
      for (int64_t N : {1, 3, 4, 5, 16, 17, 35, 36})  // 16, 35, 36: the GEMV's 16-row tiles and their tails
        for (int64_t M : {1, 2, 3, 4, 5, 9}) {
          const uint32_t seed = static_cast<uint32_t>(rng());
          std::mt19937 wr(seed);
          const TernaryMatrix w = random_ternary(N, K, wr);
          const QuantizedActs x = random_acts(bits, M, K, rng);
          const auto expect = run(ref.ternary_for(x), w, x, 0, N);
          const bool a4 = bits == ActBits::A4;
          for (int64_t tiles : {1, 2, 4}) {
            if (N % tiles != 0) continue;
            std::mt19937 same(seed);
            const TernaryMatrix t = random_ternary(N, K, same, tiles);
            const std::string what = std::string(to_string(bits)) + " K " + std::to_string(K) + " N " + std::to_string(N) + " M " +
                                     std::to_string(M) + " tiles " + std::to_string(tiles);
            ASSERT_EQ(run(ref.ternary_for(x), t, x, 0, N), expect) << "ref " << what;
            if (M == 1) ASSERT_EQ(run(a4 ? k().gemv_a4 : k().gemv_a8, t, x, 0, N), expect) << "gemv " << what;
            ASSERT_EQ(run(a4 ? k().gemm_a4 : k().gemm_a8, t, x, 0, N), expect) << "gemm " << what;
          }
        }
}

// Prefill-sized token counts: the AMX set's 16-token tiles and 64-token passes, their edges, a row
// range starting inside a row tile, and the activations both laid out per call and prepared once
// (KernelSet::prepare_gemm, as the engine does), including a stale layout after re-shaping.
TEST_P(EngineKernels, GemmManyTokensBitExactPreparedOrNot) {
  std::mt19937 rng(7);
  for (ActBits bits : {ActBits::A8, ActBits::A4})
    for (int64_t M : {15, 16, 17, 63, 64, 65, 130})
      for (int64_t K : {256, 1000})
        for (int64_t tiles : {1, 4}) {
          const int64_t N = 52;
          const TernaryMatrix w = random_ternary(N, K, rng, tiles);
          QuantizedActs x = random_acts(bits, M, K, rng);
          const std::string what = std::string(to_string(bits)) + " M " + std::to_string(M) + " K " + std::to_string(K) + " tiles " + std::to_string(tiles);
          const auto expect = run(ref_kernels().gemm_a8, w, x, 0, N);
          const TernaryKernelFn fn = bits == ActBits::A8 ? k().gemm_a8 : k().gemm_a4;
          ASSERT_EQ(run(fn, w, x, 0, N), expect) << "per call " << what;
          if (k().prepare_gemm) k().prepare_gemm(x);
          ASSERT_EQ(run(fn, w, x, 0, N), expect) << "prepared " << what;
          const auto part = run(fn, w, x, 5, 42);
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N + 3; ++n) {
              const size_t i = static_cast<size_t>(m * (N + 3) + n);
              if (n >= 5 && n < 42) ASSERT_EQ(part[i], expect[i]) << "rows 5..42 " << what << " at " << m << "," << n;
              else ASSERT_EQ(part[i], -7777) << "stray write " << what << " at " << m << "," << n;
            }
        }
  // A prepared layout does not outlive the codes it was made from.
  QuantizedActs x;
  std::vector<float> v(static_cast<size_t>(20 * 300));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (float& f : v) f = nd(rng);
  quantize_acts(ActBits::A8, v.data(), 20, 300, 300, &x);
  if (k().prepare_gemm) k().prepare_gemm(x);
  for (float& f : v) f = -f;
  quantize_acts(ActBits::A8, v.data(), 20, 300, 300, &x);
  EXPECT_FALSE(x.gemm_layout_ready);
  const TernaryMatrix w = random_ternary(16, 300, rng, 4);
  EXPECT_EQ(run(k().gemm_a8, w, x, 0, 16), run(ref_kernels().gemm_a8, w, x, 0, 16));
}

TEST_P(EngineKernels, GemvRowRangeWritesOnlyItsRows) {
  std::mt19937 rng(2);
  for (int64_t tiles : {1, 4})
    for (int64_t K : {300, 4109}) {  // 16-row tiles (short rows) and 4-row tiles (long rows)
      const TernaryMatrix w = random_ternary(48, K, rng, tiles);
      const QuantizedActs x = random_acts(ActBits::A8, 1, K, rng);
      const auto full = run(ref_kernels().gemv_a8, w, x, 0, 48);
      const auto part = run(k().gemv_a8, w, x, 5, 42);  // 37 rows from a start inside a row tile
      for (int64_t n = 0; n < 51; ++n) {
        if (n >= 5 && n < 42) ASSERT_EQ(part[n], full[n]) << "K " << K << " row " << n << " tiles " << tiles;
        else ASSERT_EQ(part[n], -7777) << "K " << K << " stray write at " << n << " tiles " << tiles;
      }
    }
}

TEST_P(EngineKernels, TernaryRowRangeWritesOnlyItsRows) {
  std::mt19937 rng(1);
  const TernaryMatrix w = random_ternary(23, 300, rng);
  const QuantizedActs x = random_acts(ActBits::A8, 3, 300, rng);
  const auto full = run(ref_kernels().gemm_a8, w, x, 0, 23);
  const auto part = run(k().gemm_a8, w, x, 5, 14);
  for (int64_t m = 0; m < 3; ++m)
    for (int64_t n = 0; n < 26; ++n) {
      const size_t i = static_cast<size_t>(m * 26 + n);
      if (n >= 5 && n < 14) ASSERT_EQ(part[i], full[i]) << m << "," << n;
      else ASSERT_EQ(part[i], -7777) << "stray write at " << m << "," << n;
    }
}

// All weights +1 and all activations at the most negative code: the largest partial sums the int16
// stages of the AVX2 kernels can see (A8 over more than 7 blocks, A4 over more than 64).
TEST_P(EngineKernels, TernaryWorstCaseMagnitudesDoNotSaturate) {
  for (ActBits bits : {ActBits::A8, ActBits::A4}) {
    const int64_t K = bits == ActBits::A8 ? 256 * 20 + 5 : 256 * 130 + 7;
    const int v = bits == ActBits::A8 ? -128 : -8;
    std::vector<int8_t> ones(static_cast<size_t>(2 * K), 1);
    for (int64_t k = 0; k < K; ++k) ones[K + k] = -1;
    const TernaryMatrix w = pack_ternary(ones.data(), 2, K, 1.0f);
    std::mt19937 rng(0);
    QuantizedActs x = random_acts(bits, 2, K, rng);
    x.sum.assign(2, 0);
    for (int64_t m = 0; m < 2; ++m)
      for (int64_t k = 0; k < K; ++k) x.sum[m] += x.q[m * x.cols_padded + k] = static_cast<int8_t>(m == 0 ? v : -v - 1);
    const auto got = run(bits == ActBits::A8 ? k().gemm_a8 : k().gemm_a4, w, x, 0, 2);
    EXPECT_EQ(got[0], v * K);
    EXPECT_EQ(got[1], -v * K);
    EXPECT_EQ(got[2 + 3 + 0], (-v - 1) * K);
    const auto gv = run(bits == ActBits::A8 ? k().gemv_a8 : k().gemv_a4, w, x, 0, 2);
    EXPECT_EQ(gv[0], v * K) << to_string(bits);
  }
}

TEST_P(EngineKernels, HeadMatchesDoublePrecisionWithinDerivedTolerance) {
  std::mt19937 rng(8);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (TableFormat f : {TableFormat::F32, TableFormat::BF16, TableFormat::I8})
    for (int64_t K : {1, 7, 8, 15, 16, 17, 100, 257})
      for (int64_t N : {1, 3, 4, 5, 9})
        for (int64_t M : {1, 3, 4, 6, 9}) {  // token groups of 4 and their tails
        std::vector<float> w(static_cast<size_t>(N * K));
        for (auto& v : w) v = nd(rng);
        const EmbeddingTable t = make_table(f, w.data(), N, K);
        const int64_t xs = K + 2;
        std::vector<float> x(static_cast<size_t>(M * xs));
        for (auto& v : x) v = nd(rng);
        std::vector<float> out(static_cast<size_t>(M * N), 0.0f);
        HeadArgs a;
        a.table = &t;
        a.x = x.data();
        a.rows = M;
        a.x_stride = xs;
        a.n0 = 0;
        a.n1 = N;
        a.out = out.data();
        a.out_stride = N;
        k().head(a);
        std::vector<float> row(static_cast<size_t>(K));
        for (int64_t n = 0; n < N; ++n) {
          t.lookup(n, row.data());
          for (int64_t m = 0; m < M; ++m) {
            double s = 0, mag = 0;
            for (int64_t kk = 0; kk < K; ++kk) {
              s += static_cast<double>(row[kk]) * x[m * xs + kk];
              mag += std::fabs(static_cast<double>(row[kk]) * x[m * xs + kk]);
            }
            // float accumulation in any order: |error| <= K * eps32 * sum|terms| (+ the I8 scale multiply)
            const double tol = (static_cast<double>(K) + 2) * 6e-8 * mag + 1e-30;
            ASSERT_NEAR(out[m * N + n], s, tol) << to_string(f) << " K " << K << " n " << n << " m " << m;
          }
        }
      }
}

TEST_P(EngineKernels, AttendMatchesDoublePrecisionWithinDerivedTolerance) {
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  constexpr double u = 0x1p-24;  // float32 unit roundoff
  for (int64_t hd : {1, 8, 17, 32, 48, 64, 128})
    for (int64_t n : {1, 2, 15, 16, 17, 65, 300}) {
      const int64_t ks = hd + 5, vs = hd + 3;  // strides wider than the data catch stray reads
      std::vector<float> q(static_cast<size_t>(hd)), kc(static_cast<size_t>(n * ks)), v(static_cast<size_t>(n * vs));
      for (auto& x : q) x = 2 * nd(rng);  // spread the scores so the softmax is not uniform
      for (auto& x : kc) x = nd(rng);
      for (auto& x : v) x = nd(rng);
      std::vector<float> scores(static_cast<size_t>(n)), out(static_cast<size_t>(hd) + 1, -5.0f);
      AttendArgs a;
      a.q = q.data();
      a.k = kc.data();
      a.k_stride = ks;
      a.v = v.data();
      a.v_stride = vs;
      a.n = n;
      a.head_dim = hd;
      a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
      a.scores = scores.data();
      a.out = out.data();
      a.next_k = kc.data(), a.next_v = v.data(), a.next_n = n;  // the prefetch hint runs on into them
      k().attend(a);
      // Double reference, and the float error bound: each score is a float dot product of hd terms,
      // |ds| <= scale * (hd + 2) * u * sum|q k|; a weight w_j = e_j / sum moves relatively by at most
      // 2 max|ds| (its own and the max's shift) + 4u (exp, division) + n u (the float sum of n
      // terms); the output adds n u of its own accumulation: |dout_i| <= sum_j w_j |v_ji| *
      // (2 max|ds| + (2n + 8) u).
      std::vector<double> sc(static_cast<size_t>(n));
      double mx = -INFINITY, ds = 0;
      for (int64_t j = 0; j < n; ++j) {
        double s = 0, mag = 0;
        for (int64_t i = 0; i < hd; ++i) {
          s += static_cast<double>(q[i]) * kc[j * ks + i];
          mag += std::fabs(static_cast<double>(q[i]) * kc[j * ks + i]);
        }
        sc[j] = s * a.scale;
        mx = std::max(mx, sc[j]);
        ds = std::max(ds, a.scale * (static_cast<double>(hd) + 2) * u * mag);
      }
      double sum = 0;
      for (auto& x : sc) sum += x = std::exp(x - mx);
      for (int64_t i = 0; i < hd; ++i) {
        double o = 0, mag = 0;
        for (int64_t j = 0; j < n; ++j) {
          o += sc[j] / sum * v[j * vs + i];
          mag += sc[j] / sum * std::fabs(v[j * vs + i]);
        }
        const double tol = mag * (2 * ds + (2 * static_cast<double>(n) + 8) * u) + 1e-30;
        ASSERT_NEAR(out[i], o, tol) << "hd " << hd << " n " << n << " i " << i;
      }
      EXPECT_EQ(out[hd], -5.0f) << "wrote past head_dim";
    }
}

TEST_P(EngineKernels, SiluGateMatchesDoublePrecisionWithinDerivedTolerance) {
  // g / (1 + e^-g) * u in floats: exp within 2 ulp (the SIMD polynomial; the C library's is within 1),
  // then an add, a division and a multiply of half an ulp each; the error of e^-g enters 1 + e^-g
  // scaled by e/(1+e) <= 1, so |dy| <= 3.5 u |y|. Below g = -87.3 the SIMD exp is clamped: both values
  // are then below 1e-35 |g u| in magnitude.
  constexpr double u32 = 0x1p-24;
  std::vector<float> g, up;
  for (int i = -2000; i <= 2000; ++i) g.push_back(static_cast<float>(i) * 0.05f);  // -100 .. 100
  for (float v : {0.0f, -0.0f, 1e-6f, -1e-6f, 1e-30f, 88.0f, -88.0f, 89.0f, -89.0f, 1e4f, -1e4f}) g.push_back(v);
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (size_t i = 0; i < g.size(); ++i) up.push_back(nd(rng));
  const size_t n = g.size();  // not a multiple of 16: the masked tail
  std::vector<float> out = g;
  k().silu_gate(out.data(), up.data(), static_cast<int64_t>(n));
  for (size_t i = 0; i < n; ++i) {
    const double y = static_cast<double>(g[i]) / (1.0 + std::exp(-static_cast<double>(g[i]))) * up[i];
    const double tol = 3.5 * u32 * std::fabs(y) + 1e-35 * (1.0 + std::fabs(static_cast<double>(g[i]) * up[i]));
    ASSERT_NEAR(out[i], y, tol) << "g " << g[i] << " u " << up[i];
  }
  // A NaN stays a NaN (the engine's checks must see it).
  float gn[3] = {1.0f, std::nanf(""), 2.0f};
  const float un[3] = {1.0f, 1.0f, 1.0f};
  k().silu_gate(gn, un, 3);
  EXPECT_TRUE(std::isnan(gn[1]));
  EXPECT_FALSE(std::isnan(gn[0]) || std::isnan(gn[2]));
}

TEST_P(EngineKernels, Relu2GateIsExactAndKeepsNaN) {
  // max(g, 0)^2 * u: two float multiplies, the same in every set (no reassociation): bit-equal to the
  // reference; a NaN gate stays NaN.
  std::mt19937 rng(12);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> g(1000 + 7), u(g.size());
  for (auto& v : g) v = nd(rng);
  for (auto& v : u) v = nd(rng);
  g[3] = std::nanf("");
  std::vector<float> a = g, b = g;
  k().relu2_gate(a.data(), u.data(), static_cast<int64_t>(g.size()));
  ref_kernels().relu2_gate(b.data(), u.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < g.size(); ++i) {
    if (i == 3) {
      EXPECT_TRUE(std::isnan(a[i]));
      continue;
    }
    const float r = g[i] > 0 ? g[i] : 0.0f;
    ASSERT_EQ(a[i], r * r * u[i]) << i;
    ASSERT_EQ(a[i], b[i]) << i;
  }
}

// The engine's codes must be the trainer's (act_quant_row.h) bit for bit, including rows with a
// NaN, an infinity, all zeros, tiny values, ties at .5 and values past the clamp, at widths on and
// off the kernels' vector lengths.
void expect_quantizer_bit_exact(ActBits bits, QuantizeRowFn fn) {
  std::mt19937 rng(13);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int64_t cols : {1, 5, 7, 8, 9, 16, 17, 255, 256, 704, 1000}) {
    for (int variant = 0; variant < 7; ++variant) {
      std::vector<float> x(static_cast<size_t>(cols));
      for (auto& v : x) v = nd(rng) * (variant == 4 ? 1e-30f : 3.0f);
      if (variant == 1) x[static_cast<size_t>(cols / 2)] = std::nanf("");
      if (variant == 2) x[0] = INFINITY;
      if (variant == 3) std::fill(x.begin(), x.end(), 0.0f);
      if (variant == 5)  // A8: amax 127 makes s = 1, so x itself is rounded: exact halves
        for (int64_t i = 0; i < cols; ++i) x[i] = i == 0 ? 127.0f : static_cast<float>(i % 7) - 3.5f;
      if (variant == 6)  // A4: values spread far past the clamp, mean dominated by a few
        for (int64_t i = 0; i < cols; ++i) x[i] = i % 13 == 0 ? 1e4f * nd(rng) : nd(rng);
      std::vector<int8_t> q(static_cast<size_t>(cols)), want(q.size());
      float mult = 0;
      const int32_t sum = fn(x.data(), cols, q.data(), &mult);
      QuantizedActs ref;
      quantize_acts(bits, x.data(), 1, cols, cols, &ref);
      std::copy_n(ref.row(0), cols, want.begin());
      const float want_mult = ref.mult[0];
      ASSERT_EQ(q, want) << to_string(bits) << " cols " << cols << " variant " << variant;
      ASSERT_EQ(sum, ref.sum[0]) << to_string(bits) << " cols " << cols << " variant " << variant;
      if (std::isnan(want_mult)) EXPECT_TRUE(std::isnan(mult));
      else ASSERT_EQ(mult, want_mult) << to_string(bits) << " cols " << cols << " variant " << variant;
    }
  }
}

TEST_P(EngineKernels, QuantizeA8IsBitExactWithTheSharedQuantizer) { expect_quantizer_bit_exact(ActBits::A8, k().quantize_a8); }
TEST_P(EngineKernels, QuantizeA4IsBitExactWithTheSharedQuantizer) { expect_quantizer_bit_exact(ActBits::A4, k().quantize_a4); }

TEST_P(EngineKernels, ReadBytesSumsEveryByte) {
  std::vector<uint8_t> buf(1000 + 77);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<uint8_t>(i * 31);
  // The probe's checksum differs between variants (lanes of 8 bytes vs bytes); only require that it
  // reads everything without faulting and depends on the data.
  const uint64_t a = k().read_bytes(buf.data(), static_cast<int64_t>(buf.size()));
  buf[5] ^= 1;
  EXPECT_NE(a, k().read_bytes(buf.data(), static_cast<int64_t>(buf.size())));
}

// The projections' probe reads exactly rows n0 .. n1: the checksum read_bytes gives over their bytes,
// for the engine's 4-row tiles and for other layouts, whole tiles and ranges that end inside one.
TEST_P(EngineKernels, ReadTernaryReadsExactlyTheRowsItIsGiven) {
  if (!k().read_ternary) GTEST_SKIP() << GetParam() << " probes the projections with read_bytes";
  std::mt19937 rng(11);
  for (const int64_t tiles : {int64_t{1}, int64_t{2}, kEngineTileRows})
    for (const int64_t K : {int64_t{64}, int64_t{300}, int64_t{1024}, int64_t{2600}}) {
      const TernaryMatrix w = random_ternary(48, K, rng, tiles);
      for (const auto& [n0, n1] : {std::pair<int64_t, int64_t>{0, 48}, {16, 32}, {4, 40}, {8, 46}}) {
        if (n0 % tiles) continue;  // rows_from needs a tile's first row
        const int64_t bytes = (n1 - n0) * w.row_bytes();
        EXPECT_EQ(k().read_ternary(w, n0, n1), k().read_bytes(w.rows_from(n0), bytes))
            << "tiles " << tiles << " K " << K << " rows " << n0 << ".." << n1;
      }
    }
}

INSTANTIATE_TEST_SUITE_P(AllVariants, EngineKernels, ::testing::Values("ref", "avx2", "avx512vnni", "amx", "amx-emulated"),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

// The AVX2 exponential applies 2^n as two exact power-of-two factors where AVX-512 uses VSCALEFPS, with
// the same clamp, rounding and polynomial: the SiLU of both SIMD sets is the same float for every input
// class (normal range, both clamps, huge, tiny, signed zeros). Runs where both sets run.
TEST(EngineKernelDispatch, SimdSiluIsTheSameFloatOnAvx2AndAvx512) {
  const KernelSet* a = nullptr;
  const KernelSet* b = nullptr;
  for (const KernelSet* s : runnable_kernel_sets()) {
    if (std::string(s->name) == "avx2") a = s;
    if (std::string(s->name) == "avx512vnni") b = s;
  }
  if (!a || !b) GTEST_SKIP() << "needs both the AVX2 and the AVX-512 set";
  std::vector<float> g, u;
  for (int i = -40000; i <= 40000; ++i) g.push_back(static_cast<float>(i) * 0.0025f);  // -100 .. 100
  for (float v : {0.0f, -0.0f, 1e-30f, -1e-30f, 87.3f, -87.3f, 88.72f, -88.72f, 89.0f, 1e4f, -1e4f}) g.push_back(v);
  u.assign(g.size(), 1.0f);
  std::vector<float> ya = g, yb = g;
  a->silu_gate(ya.data(), u.data(), static_cast<int64_t>(g.size()));
  b->silu_gate(yb.data(), u.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < g.size(); ++i) ASSERT_EQ(std::memcmp(&ya[i], &yb[i], sizeof(float)), 0) << "g " << g[i];
}

TEST(EngineKernelDispatch, PicksTheWidestRunnableSetAndRejectsUnknownNames) {
  const auto sets = runnable_kernel_sets();
  ASSERT_FALSE(sets.empty());
  EXPECT_STREQ(sets.front()->name, "ref");
  if (!std::getenv("BKD_KERNELS")) EXPECT_STREQ(best_kernels().name, sets.back()->name);
  try {
    kernels_by_name("sse9");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sse9"), std::string::npos);
    EXPECT_NE(e.hint().find("ref"), std::string::npos);
  }
}

TEST(EngineKernelDispatch, EpilogueScalesByWeightAndTokenScale) {
  QuantizedActs x;
  x.rows = 2;
  x.mult = {0.5f, 2.0f};
  const std::vector<int32_t> acc = {1, -2, 3, 4, 5, -6};
  std::vector<float> out(6);
  scale_accumulators(acc.data(), 2, 3, 3, 0.25f, x, out.data(), 3);
  EXPECT_EQ(out, (std::vector<float>{0.125f, -0.25f, 0.375f, 2.0f, 2.5f, -3.0f}));
}

}  // namespace
}  // namespace bkd

// The packed engine against an independent scalar float reference of the student forward pass
// (written here from the formulas in src/torch/model/model.h and src/torch/model/quant.h: fake-quantized
// weights and activations in float, full causal attention without a cache).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/engine/engine.h"
#include "core/engine/kernels.h"
#include "core/engine/sampler.h"
#include "core/util/error.h"

namespace bkd {
namespace {

using Mat = std::vector<float>;

ModelConfig tiny_config(bool tied) {
  ModelConfig c;
  c.vocab_size = 53;
  c.d_model = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;  // grouped-query attention
  c.ffn_dim = 96;    // not a multiple of 256: exercises padded rows
  c.max_seq_len = 24;
  c.rope_theta = 10000.0;
  c.tie_embeddings = tied;
  return c;
}

FloatModelWeights random_weights(const ModelConfig& c, uint64_t seed) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto fill = [&](int64_t n, float std, float mean = 0.0f) {
    Mat v(static_cast<size_t>(n));
    for (auto& x : v) x = mean + std * nd(rng);
    return v;
  };
  const int64_t D = c.d_model, F = c.ffn_dim, KV = c.n_kv_heads * c.head_dim(), V = c.vocab_size;
  FloatModelWeights w;
  w.cfg = c;
  w.embed = fill(V * D, 1.0f);
  if (!c.tie_embeddings) w.lm_head = fill(V * D, 0.1f);
  w.final_norm = fill(D, 0.1f, 1.0f);
  for (int64_t i = 0; i < c.n_layers; ++i) {
    FloatLayerWeights l;
    l.attn_norm = fill(D, 0.1f, 1.0f);
    l.attn_sub_norm = fill(D, 0.1f, 1.0f);
    l.ffn_norm = fill(D, 0.1f, 1.0f);
    l.ffn_sub_norm = fill(F, 0.1f, 1.0f);
    l.wq = fill(D * D, 0.02f);
    l.wk = fill(KV * D, 0.02f);
    l.wv = fill(KV * D, 0.02f);
    l.wo = fill(D * D, 0.02f);
    l.w_gate = fill(F * D, 0.02f);
    l.w_up = fill(F * D, 0.02f);
    l.w_down = fill(D * F, 0.02f);
    w.layers.push_back(std::move(l));
  }
  return w;
}

// ---- the reference --------------------------------------------------------------------------

float round_even(float v) { return std::nearbyint(v); }

Mat ternary_dequant(const Mat& w) {
  double s = 0;
  for (float x : w) s += std::fabs(x);
  const float g = std::max(static_cast<float>(s / static_cast<double>(w.size())), 1e-5f);
  Mat out(w.size());
  for (size_t i = 0; i < w.size(); ++i) out[i] = round_even(std::min(1.0f, std::max(-1.0f, w[i] / g))) * g;
  return out;
}

void fq_a8(float* x, int64_t d) {
  float mx = 0;
  for (int64_t i = 0; i < d; ++i) mx = std::max(mx, std::fabs(x[i]));
  const float s = (1.0f / std::max(mx, 1e-5f)) * 127.0f;
  for (int64_t i = 0; i < d; ++i) x[i] = round_even(std::min(127.0f, std::max(-128.0f, x[i] * s))) / s;
}

void fq_a4(float* x, int64_t d) {
  double sum = 0;
  for (int64_t i = 0; i < d; ++i) sum += std::fabs(x[i]);
  const float b = static_cast<float>(sum / static_cast<double>(d));
  const float sq7 = 2.6457513110645907f;
  const float scale = (1.0f / (b + 1e-5f)) * sq7;
  for (int64_t i = 0; i < d; ++i) x[i] = round_even(std::min(7.0f, std::max(-8.0f, x[i] * scale))) * (b / sq7);
}

// y (T x out) = x (T x in) W^T with W (out x in), accumulated in double.
Mat linear(const Mat& x, int64_t T, int64_t in, const Mat& W, int64_t out) {
  Mat y(static_cast<size_t>(T * out));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t o = 0; o < out; ++o) {
      double s = 0;
      for (int64_t k = 0; k < in; ++k) s += static_cast<double>(x[t * in + k]) * W[o * in + k];
      y[t * out + o] = static_cast<float>(s);
    }
  return y;
}

Mat rms(const Mat& x, int64_t T, int64_t d, const Mat& g, double eps) {
  Mat y(x.size());
  for (int64_t t = 0; t < T; ++t) {
    double ss = 0;
    for (int64_t k = 0; k < d; ++k) ss += static_cast<double>(x[t * d + k]) * x[t * d + k];
    const double r = 1.0 / std::sqrt(ss / static_cast<double>(d) + eps);
    for (int64_t k = 0; k < d; ++k) y[t * d + k] = static_cast<float>(x[t * d + k] * r * g[k]);
  }
  return y;
}

void rope(Mat& x, int64_t T, int64_t heads, int64_t hd, double theta) {
  const int64_t half = hd / 2;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const double ang = static_cast<double>(t) * std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(hd));
        float* v = x.data() + (t * heads + h) * hd;
        const double x1 = v[i], x2 = v[i + half];
        v[i] = static_cast<float>(x1 * std::cos(ang) - x2 * std::sin(ang));
        v[i + half] = static_cast<float>(x2 * std::cos(ang) + x1 * std::sin(ang));
      }
}

struct Reference {
  Mat logits;  // T x V
  Mat hidden;  // T x D, after final_norm
};

Reference reference_forward(const FloatModelWeights& w, QuantMode mode, const std::vector<int32_t>& tokens) {
  const ModelConfig& c = w.cfg;
  const int64_t T = static_cast<int64_t>(tokens.size()), D = c.d_model, F = c.ffn_dim, H = c.n_heads,
                HKV = c.n_kv_heads, hd = c.head_dim(), KV = HKV * hd, V = c.vocab_size;
  auto in_q = [&](Mat& x, int64_t d) {
    for (int64_t t = 0; t < T; ++t) (mode == QuantMode::TernaryA4 ? fq_a4 : fq_a8)(x.data() + t * d, d);
  };
  auto out_q = [&](Mat& x, int64_t d) {
    for (int64_t t = 0; t < T; ++t) fq_a8(x.data() + t * d, d);
  };
  Mat x(static_cast<size_t>(T * D));
  for (int64_t t = 0; t < T; ++t) std::copy_n(w.embed.data() + tokens[t] * D, D, x.data() + t * D);
  for (const FloatLayerWeights& L : w.layers) {
    Mat a = rms(x, T, D, L.attn_norm, c.norm_eps);
    in_q(a, D);
    Mat q = linear(a, T, D, ternary_dequant(L.wq), D);
    Mat k = linear(a, T, D, ternary_dequant(L.wk), KV);
    Mat v = linear(a, T, D, ternary_dequant(L.wv), KV);
    rope(q, T, H, hd, c.rope_theta);
    rope(k, T, HKV, hd, c.rope_theta);
    Mat att(static_cast<size_t>(T * D), 0.0f);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t g = h / (H / HKV);
        std::vector<double> s(static_cast<size_t>(t + 1));
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j <= t; ++j) {
          double dot = 0;
          for (int64_t i = 0; i < hd; ++i) dot += static_cast<double>(q[(t * H + h) * hd + i]) * k[(j * HKV + g) * hd + i];
          s[j] = dot / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[j]);
        }
        for (auto& e : s) sum += e = std::exp(e - mx);
        for (int64_t i = 0; i < hd; ++i) {
          double o = 0;
          for (int64_t j = 0; j <= t; ++j) o += s[j] / sum * v[(j * HKV + g) * hd + i];
          att[(t * H + h) * hd + i] = static_cast<float>(o);
        }
      }
    Mat as = rms(att, T, D, L.attn_sub_norm, c.norm_eps);
    out_q(as, D);
    Mat o = linear(as, T, D, ternary_dequant(L.wo), D);
    for (size_t i = 0; i < x.size(); ++i) x[i] += o[i];
    Mat f = rms(x, T, D, L.ffn_norm, c.norm_eps);
    in_q(f, D);
    Mat gate = linear(f, T, D, ternary_dequant(L.w_gate), F);
    Mat up = linear(f, T, D, ternary_dequant(L.w_up), F);
    if (w.cfg.ffn_activation == FfnActivation::Silu)
      for (size_t i = 0; i < gate.size(); ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
    else
      for (size_t i = 0; i < gate.size(); ++i) gate[i] = std::max(gate[i], 0.0f) * std::max(gate[i], 0.0f) * up[i];
    Mat gs = rms(gate, T, F, L.ffn_sub_norm, c.norm_eps);
    out_q(gs, F);
    Mat dn = linear(gs, T, F, ternary_dequant(L.w_down), D);
    for (size_t i = 0; i < x.size(); ++i) x[i] += dn[i];
  }
  Reference r;
  r.hidden = rms(x, T, D, w.final_norm, c.norm_eps);
  r.logits = linear(r.hidden, T, D, c.tie_embeddings ? w.embed : w.lm_head, V);
  return r;
}

// ---- tests -----------------------------------------------------------------------------------

std::vector<int32_t> some_tokens(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

double max_abs(const Mat& a) {
  double m = 0;
  for (float x : a) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

class EngineVsReference : public ::testing::TestWithParam<std::tuple<QuantMode, bool>> {};

void expect_engine_matches_reference(const ModelConfig& c, QuantMode mode) {
  const FloatModelWeights w = random_weights(c, 17);
  const PackedModel pm = pack_model(w);
  const auto tokens = some_tokens(11, c.vocab_size, 3);
  const Reference ref = reference_forward(w, mode, tokens);

  // Every kernel set this CPU runs, forced in turn (the scalar reference runs everywhere).
  for (const KernelSet* ks : runnable_kernel_sets()) {
    SCOPED_TRACE(std::string("kernels ") + ks->name);
    EngineOptions o;
    o.mode = mode;
    o.threads = 2;
    o.kernels = ks;
    Engine eng(pm, o);
    Mat logits(tokens.size() * static_cast<size_t>(c.vocab_size));
    eng.forward(tokens.data(), static_cast<int64_t>(tokens.size()), logits.data(), true);
    double worst = 0;
    for (size_t i = 0; i < logits.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(logits[i]) - ref.logits[i]));
    // The integer path is exact; what differs is float rounding (order of sums, rsqrt, exp), measured
    // at ~2e-7 of the logit range here. A code flipping at a .5 boundary would show up as ~1e-2.
    const double tol = 2e-5 * (1.0 + max_abs(ref.logits));
    EXPECT_LT(worst, tol) << "max |engine - reference| over " << logits.size() << " logits";
    for (size_t t = 0; t < tokens.size(); ++t)
      EXPECT_EQ(argmax(logits.data() + t * c.vocab_size, c.vocab_size), argmax(ref.logits.data() + t * c.vocab_size, c.vocab_size))
          << "position " << t;
  }
}

TEST_P(EngineVsReference, LogitsMatchTheFloatReference) {
  const auto [mode, tied] = GetParam();
  expect_engine_matches_reference(tiny_config(tied), mode);
}

TEST(EngineModel, SiluFfnMatchesTheFloatReference) {
  ModelConfig c = tiny_config(true);
  c.ffn_activation = FfnActivation::Silu;
  expect_engine_matches_reference(c, QuantMode::TernaryA8);
  expect_engine_matches_reference(c, QuantMode::TernaryA4);
}

INSTANTIATE_TEST_SUITE_P(Modes, EngineVsReference,
                         ::testing::Combine(::testing::Values(QuantMode::TernaryA8, QuantMode::TernaryA4), ::testing::Bool()),
                         [](const auto& info) {
                           return to_string(std::get<0>(info.param)) + (std::get<1>(info.param) ? "_tied" : "_untied");
                         });

TEST(EngineModel, IncrementalDecodeEqualsPrefillBitForBit) {
  const ModelConfig c = tiny_config(true);
  const PackedModel pm = pack_model(random_weights(c, 5));
  const auto tokens = some_tokens(9, c.vocab_size, 1);
  for (QuantMode mode : {QuantMode::TernaryA8, QuantMode::TernaryA4}) {
    EngineOptions o;
    o.mode = mode;
    Engine all(pm, o), step(pm, o);
    Mat a(tokens.size() * static_cast<size_t>(c.vocab_size)), s(static_cast<size_t>(c.vocab_size));
    all.forward(tokens.data(), 9, a.data(), true);
    step.forward(tokens.data(), 4, nullptr);  // a prefill chunk, then single tokens
    for (int64_t t = 4; t < 9; ++t) {
      step.forward(&tokens[t], 1, s.data());
      for (int64_t v = 0; v < c.vocab_size; ++v) ASSERT_EQ(s[v], a[t * c.vocab_size + v]) << "pos " << t << " vocab " << v;
    }
    EXPECT_EQ(step.position(), 9);
    step.rewind(6);  // drop tokens 6..8 and recompute 6: same bits again
    step.forward(&tokens[6], 1, s.data());
    for (int64_t v = 0; v < c.vocab_size; ++v) ASSERT_EQ(s[v], a[6 * c.vocab_size + v]) << "after rewind, vocab " << v;
    EXPECT_THROW(step.rewind(8), Error);
  }
}

TEST(EngineModel, ThreadCountAndKernelSetDoNotChangeResults) {
  const ModelConfig c = tiny_config(false);
  const PackedModel pm = pack_model(random_weights(c, 8));
  const auto tokens = some_tokens(7, c.vocab_size, 2);
  auto run = [&](int threads, const KernelSet* k) {
    EngineOptions o;
    o.mode = QuantMode::TernaryA4;
    o.threads = threads;
    o.kernels = k;
    o.parallel_min_bytes = 0;  // split every region: the tiny model would otherwise run on one thread
    Engine e(pm, o);
    Mat l(tokens.size() * static_cast<size_t>(c.vocab_size));
    e.forward(tokens.data(), 7, l.data(), true);
    return l;
  };
  const Mat base = run(1, &ref_kernels());
  EXPECT_EQ(run(3, &ref_kernels()), base);  // partitions by whole rows: identical arithmetic
  for (const KernelSet* k : runnable_kernel_sets()) {
    const Mat l = run(2, k);  // integer parts exact; the float head sums in another order
    for (size_t i = 0; i < l.size(); ++i) ASSERT_NEAR(l[i], base[i], 1e-4 * (1 + std::fabs(base[i]))) << k->name;
  }
}

// The AMX set differs from the AVX-512 VNNI set only in its GEMM, which is exact: a prefill longer
// than one 16-token tile, split across threads (so every chunk reads the activations the engine laid
// out once per region), then decode steps, give the AVX-512 engine's logits bit for bit. The tile
// program runs on emulated tile registers everywhere with AVX-512, and on the tile unit where it exists.
TEST(EngineModel, AmxSetGivesTheAvx512LogitsBitForBit) {
  const KernelSet* avx512 = nullptr;
  const KernelSet* amx = nullptr;
  for (const KernelSet* k : runnable_kernel_sets()) {
    if (std::string(k->name) == "avx512vnni") avx512 = k;
    if (std::string(k->name) == "amx") amx = k;
  }
  if (!avx512) GTEST_SKIP() << "needs the AVX-512 VNNI set";
  const ModelConfig c = tiny_config(true);
  const PackedModel pm = pack_model(random_weights(c, 21));
  const auto tokens = some_tokens(23, c.vocab_size, 6);
  for (QuantMode mode : {QuantMode::TernaryA8, QuantMode::TernaryA4}) {
    auto run = [&](const KernelSet* k) {
      EngineOptions o;
      o.mode = mode;
      o.threads = 2;
      o.kernels = k;
      o.parallel_min_bytes = 0;
      Engine e(pm, o);
      Mat l(tokens.size() * static_cast<size_t>(c.vocab_size));
      e.forward(tokens.data(), 20, l.data(), true);
      for (int64_t t = 20; t < 23; ++t) e.forward(&tokens[t], 1, l.data() + t * c.vocab_size);
      return l;
    };
    const Mat base = run(avx512);
    for (const KernelSet* k : {amx_emulated_kernels(), amx}) {
      if (!k) continue;
      const Mat l = run(k);
      for (size_t i = 0; i < l.size(); ++i) ASSERT_EQ(l[i], base[i]) << k->name << " " << to_string(mode) << " logit " << i;
    }
  }
}

TEST(EngineModel, SmallRegionsRunOnTheCallerAndLargeOnesSplit) {
  // Below kParallelMinBytes the hand-off costs more than the second thread saves: one chunk.
  EXPECT_EQ(work_chunks(kParallelMinBytes - 1, 2), 1);
  EXPECT_EQ(work_chunks(int64_t{1} << 40, 1), 1);
  EXPECT_EQ(work_chunks(kParallelMinBytes, 2), kParallelMinBytes / kChunkBytes);
  EXPECT_EQ(work_chunks(int64_t{1} << 40, 2), 32);  // at most 16 per thread
  EXPECT_EQ(work_chunks(10, 2, 0), 2);               // a zero threshold still splits in two
  // A 2-thread engine on a tiny model gives the 1-thread results bit for bit (every region inline).
  const ModelConfig c = tiny_config(true);
  const PackedModel pm = pack_model(random_weights(c, 12));
  const auto tokens = some_tokens(5, c.vocab_size, 4);
  Mat one(tokens.size() * static_cast<size_t>(c.vocab_size)), two(one.size());
  for (int threads : {1, 2}) {
    EngineOptions o;
    o.threads = threads;
    Engine e(pm, o);
    e.forward(tokens.data(), 5, (threads == 1 ? one : two).data(), true);
  }
  EXPECT_EQ(one, two);
}

TEST(EngineModel, StreamWeightsReadsEveryPackedByteAndTheHead) {
  const ModelConfig c = tiny_config(false);
  const PackedModel pm = pack_model(random_weights(c, 13));
  for (int64_t min_bytes : {kParallelMinBytes, int64_t{0}}) {
    EngineOptions o;
    o.threads = 2;
    o.parallel_min_bytes = min_bytes;
    Engine e(pm, o);
    const EmbeddingTable& head = pm.head();
    for (const Engine::ProbeReads reads : {Engine::ProbeReads::Plain, Engine::ProbeReads::KernelPattern})
      EXPECT_EQ(e.stream_weights(reads), pm.ternary_bytes() + static_cast<uint64_t>(head.rows * head.cols * head.element_bytes()));
  }
}

// last_times() splits the last call's wall time by region: the probe's and a step's projections and
// head, within the whole call; a forward without logits runs no head; each call starts afresh.
TEST(EngineModel, LastTimesSplitTheLastCallByRegion) {
  const ModelConfig c = tiny_config(false);
  const PackedModel pm = pack_model(random_weights(c, 14));
  EngineOptions o;
  o.threads = 2;
  Engine e(pm, o);
  auto check = [](const StepTimes& t, bool head) {
    EXPECT_GT(t.projections_s, 0.0);
    EXPECT_EQ(t.head_s > 0.0, head);
    EXPECT_GE(t.total_s, t.projections_s + t.head_s);
  };
  e.stream_weights();
  check(e.last_times(), true);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  const int32_t tokens[3] = {1, 2, 3};
  e.forward(tokens, 3, logits.data());
  check(e.last_times(), true);
  e.forward(tokens, 1, nullptr);
  check(e.last_times(), false);
}

// Records what the observer sees: every BitLinear input's bit width and code range.
struct CodeRangeObserver : ForwardObserver {
  std::vector<std::string> names;
  std::vector<ActBits> bits;
  int min_code = 0, max_code = 0;
  int64_t final_rows = 0;
  void on_bitlinear(int64_t, const char* name, const QuantizedActs& x, const TernaryMatrix&, const int32_t*, int64_t) override {
    names.push_back(name);
    bits.push_back(x.bits);
    for (int64_t m = 0; m < x.rows; ++m)
      for (int64_t k = 0; k < x.cols; ++k) {
        min_code = std::min<int>(min_code, x.row(m)[k]);
        if (x.bits == ActBits::A4) max_code = std::max<int>(max_code, x.row(m)[k]);
      }
  }
  void on_final_hidden(const float*, int64_t rows, int64_t) override { final_rows += rows; }
};

TEST(EngineModel, A4HybridQuantizesQkvAndGateUpTo4BitsAndTheRestTo8) {
  const ModelConfig c = tiny_config(true);
  const PackedModel pm = pack_model(random_weights(c, 9));
  EngineOptions o;
  o.mode = QuantMode::TernaryA4;
  Engine e(pm, o);
  CodeRangeObserver obs;
  e.set_observer(&obs);
  const auto tokens = some_tokens(5, c.vocab_size, 4);
  e.forward(tokens.data(), 5, nullptr);
  ASSERT_EQ(obs.names.size(), 2u * 7u);
  for (size_t i = 0; i < obs.names.size(); ++i) {
    const bool eight = obs.names[i] == "wo" || obs.names[i] == "w_down";
    EXPECT_EQ(obs.bits[i], eight ? ActBits::A8 : ActBits::A4) << obs.names[i];
  }
  EXPECT_GE(obs.max_code, -8);
  EXPECT_LE(obs.max_code, 7);
  EXPECT_EQ(obs.final_rows, 5);
}

TEST(EngineModel, RejectsBadTokensOverflowAndFullPrecision) {
  const ModelConfig c = tiny_config(true);
  const PackedModel pm = pack_model(random_weights(c, 1));
  Engine e(pm);
  const int32_t bad = static_cast<int32_t>(c.vocab_size);
  try {
    e.forward(&bad, 1, nullptr);
    FAIL();
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("token id 53"), std::string::npos) << err.what();
  }
  const auto tokens = some_tokens(c.max_seq_len, c.vocab_size, 1);
  e.forward(tokens.data(), c.max_seq_len, nullptr);
  try {
    e.forward(tokens.data(), 1, nullptr);
    FAIL();
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("past the engine's context of 24"), std::string::npos) << err.what();
    EXPECT_NE(err.hint().find("reset"), std::string::npos);
  }
  e.reset();
  EXPECT_NO_THROW(e.forward(tokens.data(), 1, nullptr));
  EngineOptions fp;
  fp.mode = QuantMode::FullPrecision;
  EXPECT_THROW(Engine(pm, fp), Error);
}

TEST(EngineModel, PackModelNamesAMisShapedTensor) {
  ModelConfig c = tiny_config(true);
  FloatModelWeights w = random_weights(c, 1);
  w.layers[1].w_up.pop_back();
  try {
    pack_model(w);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.1.w_up"), std::string::npos) << e.what();
  }
}

TEST(EngineSampler, GreedyTakesTheArgmaxAndTemperatureFollowsTheSoftmax) {
  const std::vector<float> logits = {0.0f, std::log(2.0f), std::log(5.0f), -50.0f};
  Sampler greedy;
  EXPECT_EQ(greedy.sample(logits.data(), 4), 2);
  SamplerOptions so;
  so.temperature = 1.0;
  so.seed = 7;
  Sampler s(so);
  std::vector<int> counts(4, 0);
  const int N = 40000;
  for (int i = 0; i < N; ++i) ++counts[s.sample(logits.data(), 4)];
  // p = 1/8, 2/8, 5/8, ~0; binomial sd <= sqrt(N/4) = 100: allow 5 sd.
  EXPECT_NEAR(counts[0], N / 8.0, 500);
  EXPECT_NEAR(counts[1], N * 2 / 8.0, 500);
  EXPECT_NEAR(counts[2], N * 5 / 8.0, 500);
  EXPECT_EQ(counts[3], 0);
  so.top_k = 1;
  Sampler top1(so);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(top1.sample(logits.data(), 4), 2);
}

TEST(EngineSampler, GenerateIsReproducibleAndStopsAtTheStopToken) {
  const ModelConfig c = tiny_config(true);
  const PackedModel pm = pack_model(random_weights(c, 2));
  const std::vector<int32_t> prompt = {1, 2, 3};
  auto gen = [&](double temp, uint64_t seed, int32_t stop) {
    Engine e(pm);
    SamplerOptions so;
    so.temperature = temp;
    so.seed = seed;
    Sampler s(so);
    return generate(e, prompt, 8, s, stop);
  };
  const auto g1 = gen(0.8, 11, -1), g2 = gen(0.8, 11, -1);
  EXPECT_EQ(g1, g2);
  EXPECT_EQ(g1.size(), 8u);
  const auto greedy = gen(0.0, 1, -1);
  // Greedy continuation equals the argmax of the reference at each step.
  std::vector<int32_t> seq = prompt;
  const FloatModelWeights w = random_weights(c, 2);
  for (int i = 0; i < 3; ++i) {
    const Reference r = reference_forward(w, QuantMode::TernaryA8, seq);
    const int32_t next = argmax(r.logits.data() + (seq.size() - 1) * c.vocab_size, c.vocab_size);
    EXPECT_EQ(greedy[i], next) << "step " << i;
    seq.push_back(next);
  }
  const auto stopped = gen(0.0, 1, greedy[2]);
  EXPECT_EQ(stopped.back(), greedy[2]);
  EXPECT_LE(stopped.size(), 3u);
}

}  // namespace
}  // namespace bkd

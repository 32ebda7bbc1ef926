#include "core/engine/dryrun.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <fstream>
#include <ctime>
#include <map>
#include <string>

#include "core/engine/engine.h"
#include "core/engine/sampler.h"
#include "core/util/error.h"
#include "core/util/log.h"
#include "core/util/sysinfo.h"

namespace bkd {
namespace {

// splitmix64: a seedable stream per (tensor, row), so rows fill in parallel and reproducibly.
struct SplitMix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

uint64_t mix(uint64_t a, uint64_t b) { return SplitMix{a * 0x9e3779b97f4a7c15ull ^ b}.next(); }

// The 81 bytes whose four 2-bit fields are all valid codes; a random byte picks one, so every
// packed byte is valid and the codes are (nearly) uniform over {-1, 0, +1}.
struct ValidBytes {
  uint8_t b[81];
  ValidBytes() {
    for (int i = 0; i < 81; ++i) b[i] = static_cast<uint8_t>(i % 3 | (i / 3 % 3) << 2 | (i / 9 % 3) << 4 | (i / 27) << 6);
  }
};

void random_ternary(TernaryMatrix& m, int64_t rows, int64_t cols, uint64_t seed, ThreadPool& pool) {
  static const ValidBytes valid;
  m.allocate(rows, cols);
  m.scale = static_cast<float>(1.0 / std::sqrt(2.0 / 3.0 * static_cast<double>(cols)));
  const int64_t rb = m.row_bytes();
  const int64_t chunks = std::min<int64_t>(rows, 64);
  pool.run(chunks, [&](int64_t c) {
    int64_t r0, r1;
    split_range(rows, chunks, c, 1, &r0, &r1);
    for (int64_t r = r0; r < r1; ++r) {
      SplitMix rng{mix(seed, static_cast<uint64_t>(r))};
      uint8_t* p = m.row(r);
      for (int64_t i = 0; i < rb; i += 8) {
        uint64_t v = rng.next();
        for (int64_t j = 0; j < 8 && i + j < rb; ++j, v >>= 8) p[i + j] = valid.b[((v & 0xff) * 81) >> 8];
      }
      for (int64_t k = cols; k < ternary_padded_cols(cols); ++k)  // padding must be weight 0
        p[ternary_byte_of(k)] = static_cast<uint8_t>((p[ternary_byte_of(k)] & ~(3u << ternary_shift_of(k))) |
                                                     (1u << ternary_shift_of(k)));
    }
  });
}

void random_table(EmbeddingTable& t, TableFormat f, int64_t rows, int64_t cols, uint64_t seed, ThreadPool& pool) {
  t.allocate(f, rows, cols);
  const int64_t chunks = std::min<int64_t>(rows, 64);
  pool.run(chunks, [&](int64_t c) {
    int64_t r0, r1;
    split_range(rows, chunks, c, 1, &r0, &r1);
    for (int64_t r = r0; r < r1; ++r) {
      SplitMix rng{mix(seed, static_cast<uint64_t>(r))};
      for (int64_t k = 0; k < cols; ++k) {
        const uint64_t v = rng.next();
        if (f == TableFormat::I8) {
          reinterpret_cast<int8_t*>(t.data.data())[r * cols + k] = static_cast<int8_t>(static_cast<int>(v % 255) - 127);
        } else {
          const float u = static_cast<float>(static_cast<double>(v >> 11) * 0x1.0p-53 * 2.0 - 1.0);
          if (f == TableFormat::BF16) reinterpret_cast<uint16_t*>(t.data.data())[r * cols + k] = float_to_bf16(u);
          else reinterpret_cast<float*>(t.data.data())[r * cols + k] = u;
        }
      }
      if (f == TableFormat::I8) t.row_scale[r] = 1.0f / 127.0f;
    }
  });
}

// Per-projection statistics of one run, accumulated over every call (prefill and decode).
struct ProjStats {
  ActBits bits = ActBits::A8;
  int64_t in_features = 0, codes = 0, clipped = 0;
  int code_min = 0, code_max = 0;
  int64_t acc_max_abs = 0;
  float mult_min = INFINITY, mult_max = 0;
};

struct StatsObserver : ForwardObserver {
  std::map<std::pair<int64_t, std::string>, ProjStats> proj;
  std::vector<float> final_hidden;  // rows x d of the prefill
  bool capture_final = true;
  bool finite = true;

  void on_bitlinear(int64_t layer, const char* name, const QuantizedActs& x, const TernaryMatrix& w, const int32_t* acc,
                    int64_t acc_stride) override {
    ProjStats& s = proj[{layer, name}];
    s.bits = x.bits;
    s.in_features = x.cols;
    const int lo = x.bits == ActBits::A8 ? -128 : -8, hi = x.bits == ActBits::A8 ? 127 : 7;
    for (int64_t m = 0; m < x.rows; ++m) {
      const int8_t* q = x.row(m);
      for (int64_t k = 0; k < x.cols; ++k) {
        s.code_min = std::min<int>(s.code_min, q[k]);
        s.code_max = std::max<int>(s.code_max, q[k]);
        s.clipped += q[k] == lo || q[k] == hi;
      }
      s.codes += x.cols;
      s.mult_min = std::min(s.mult_min, x.mult[m]);
      s.mult_max = std::max(s.mult_max, x.mult[m]);
      finite &= std::isfinite(x.mult[m]);
      for (int64_t n = 0; n < w.rows; ++n)
        s.acc_max_abs = std::max<int64_t>(s.acc_max_abs, std::llabs(static_cast<long long>(acc[m * acc_stride + n])));
    }
  }
  void on_final_hidden(const float* h, int64_t rows, int64_t d) override {
    for (int64_t i = 0; i < rows * d; ++i) finite &= std::isfinite(h[i]);
    if (capture_final) final_hidden.assign(h, h + rows * d);
  }
};

// 1-minute load average: the dry-run's times mean little on a machine that is busy with other work.
double load_average() {
  std::ifstream in("/proc/loadavg");
  double l = -1;
  in >> l;
  return l;
}

struct ModeResult {
  nlohmann::json json;
  std::vector<float> final_hidden;
  std::vector<int32_t> generated;
  int threads = 0;
  // Per decode step: its wall and CPU time, and those of the bandwidth probe run just before it
  // (the faster of the two read loops; each one's time too).
  std::vector<double> steps, step_cpu, probe_s, probe_cpu, plain_probe_s, pattern_probe_s;
  std::vector<StepTimes> step_parts, probe_parts;  // the same split by region (Engine::last_times)
  uint64_t probe_bytes = 0;
  bool codes_ok = true, acc_ok = true, finite = true;
};

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// A prompt forward pass, then decode steps, each paired with bandwidth probes run just before it
// on the same engine (Engine::stream_weights: the same bytes, regions and threads as the step, no
// arithmetic), so they see the same machine (on a shared machine the load changes from second to
// second). With `observe`, the prompt pass also gathers per-projection statistics.
ModeResult run_mode(const PackedModel& model, QuantMode mode, const DryrunOptions& o, const std::vector<int32_t>& prompt,
                    int threads, bool observe) {
  EngineOptions eo;
  eo.mode = mode;
  eo.threads = threads;
  eo.max_seq_len = o.prompt_tokens + o.decode_tokens + 1;
  Engine eng(model, eo);
  StatsObserver obs;
  if (observe) eng.set_observer(&obs);
  const int64_t V = model.cfg.vocab_size;
  std::vector<float> logits(static_cast<size_t>(V));
  ModeResult r;
  r.threads = eng.threads();

  Timer t;
  eng.forward(prompt.data(), static_cast<int64_t>(prompt.size()), logits.data());
  double prefill_s = t.seconds();
  r.final_hidden = obs.final_hidden;
  // Prefill and decode are timed without the observer (its scans would add to the time): with
  // one, the prompt runs again.
  eng.set_observer(nullptr);
  if (observe) {
    eng.reset();
    t.reset();
    eng.forward(prompt.data(), static_cast<int64_t>(prompt.size()), logits.data());
    prefill_s = t.seconds();
  }
  for (int64_t i = 0; i < o.decode_tokens; ++i) {
    const int32_t next = argmax(logits.data(), V);
    r.generated.push_back(next);
    // Two probes, and the faster sets the floor: the plain read loop, and the GEMV's own loads and
    // prefetches, which on the Zen 5 VMs read the projections in 0.86-0.89 times the plain loop's time
    // (gemv_mix_bench). Either may be the faster on another CPU; the floor takes the best of both.
    double best_s = 0, best_cpu = 0;
    StepTimes best_parts;
    for (const Engine::ProbeReads reads : {Engine::ProbeReads::Plain, Engine::ProbeReads::KernelPattern}) {
      const double cpu0 = process_cpu_seconds();
      t.reset();
      r.probe_bytes = eng.stream_weights(reads);
      const double s = t.seconds(), cpu = process_cpu_seconds() - cpu0;
      (reads == Engine::ProbeReads::Plain ? r.plain_probe_s : r.pattern_probe_s).push_back(s);
      if (best_s == 0 || s < best_s) best_s = s, best_cpu = cpu, best_parts = eng.last_times();
    }
    r.probe_s.push_back(best_s);
    r.probe_cpu.push_back(best_cpu);
    r.probe_parts.push_back(best_parts);
    const double cpu0 = process_cpu_seconds();
    t.reset();
    eng.forward(&next, 1, logits.data());
    r.steps.push_back(t.seconds());
    r.step_cpu.push_back(process_cpu_seconds() - cpu0);
    r.step_parts.push_back(eng.last_times());
  }
  r.generated.push_back(argmax(logits.data(), V));
  if (!observe) return r;

  nlohmann::json layers = nlohmann::json::array();
  for (int64_t l = 0; l < model.cfg.n_layers; ++l) {
    nlohmann::json lj = {{"layer", l}};
    for (const char* name : {"wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down"}) {
      const ProjStats& s = obs.proj[{l, name}];
      const int max_code = s.bits == ActBits::A8 ? 128 : 8;
      // |sum w q| <= in * max|q| (|w| <= 1); the SIMD kernels also form sum (w+1) q, up to twice that.
      const int64_t bound = s.in_features * max_code, kernel_bound = 2 * bound;
      const bool acc_ok = kernel_bound <= std::numeric_limits<int32_t>::max() && s.acc_max_abs <= bound;
      const bool codes_ok = s.bits == ActBits::A4 ? (s.code_min >= -8 && s.code_max <= 7) : (s.code_min >= -128 && s.code_max <= 127);
      r.codes_ok &= codes_ok;
      r.acc_ok &= acc_ok;
      lj[name] = {{"bits", s.bits == ActBits::A4 ? 4 : 8},
                  {"in_features", s.in_features},
                  {"code_min", s.code_min},
                  {"code_max", s.code_max},
                  {"codes_in_range", codes_ok},
                  {"clipped_fraction", s.codes ? static_cast<double>(s.clipped) / static_cast<double>(s.codes) : 0.0},
                  {"dequant_mult_min", s.mult_min},
                  {"dequant_mult_max", s.mult_max},
                  {"acc_max_abs", s.acc_max_abs},
                  {"acc_bound", bound},
                  {"acc_kernel_bound", kernel_bound},
                  {"acc_no_overflow", acc_ok}};
    }
    layers.push_back(lj);
  }
  r.finite = obs.finite;
  const double decode_s = median(r.steps);
  const double prefill_tok_s = static_cast<double>(prompt.size()) / prefill_s;
  r.json = {{"mode", to_string(mode)},
            {"kernels", eng.kernels().name},
            {"threads", eng.threads()},
            {"prefill_tokens", prompt.size()},
            {"prefill_seconds", prefill_s},
            {"prefill_s_per_token", prefill_s / static_cast<double>(prompt.size())},
            {"prefill_tokens_per_s", static_cast<double>(prompt.size()) / prefill_s},
            {"decode_steps", o.decode_tokens},
            {"decode_step_seconds", r.steps},
            {"decode_step_cpu_seconds", r.step_cpu},
            {"decode_s_per_token_median", decode_s},
            {"decode_tokens_per_s", decode_s > 0 ? 1.0 / decode_s : 0.0},
            // The prompt's tokens/s over decode's, on the same engine and threads.
            {"prefill_to_decode_speed", prefill_tok_s * decode_s},
            {"prefill_to_decode_target", o.min_prefill_to_decode},
            {"prefill_to_decode_target_met", prefill_tok_s * decode_s >= o.min_prefill_to_decode},
            {"greedy_tokens", r.generated},
            {"a4_codes_in_range", r.codes_ok},
            {"int32_no_overflow", r.acc_ok},
            {"all_finite", r.finite},
            {"layers", layers}};
  return r;
}

double cosine(const float* a, const float* b, int64_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (int64_t i = 0; i < n; ++i) {
    ab += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

}  // namespace

ModelConfig llama7b_shape() {
  ModelConfig c;
  c.vocab_size = 32000;
  c.d_model = 4096;
  c.n_layers = 32;
  c.n_heads = 32;
  c.n_kv_heads = 32;
  c.ffn_dim = 11008;
  c.max_seq_len = 2048;
  c.rope_theta = 10000.0;
  c.tie_embeddings = false;
  c.bitlinear = true;
  return c;
}

PackedModel make_random_packed_model(const ModelConfig& shape, TableFormat tables, uint64_t seed, ThreadPool& pool) {
  shape.validate();
  const int64_t D = shape.d_model, F = shape.ffn_dim, KV = shape.n_kv_heads * shape.head_dim(), V = shape.vocab_size;
  PackedModel m;
  m.cfg = shape;
  uint64_t tensor = 0;
  random_table(m.embed, tables, V, D, mix(seed, tensor++), pool);
  if (!shape.tie_embeddings) random_table(m.lm_head, tables, V, D, mix(seed, tensor++), pool);
  m.final_norm.assign(static_cast<size_t>(D), 1.0f);
  m.layers.resize(static_cast<size_t>(shape.n_layers));
  for (PackedLayer& l : m.layers) {
    l.attn_norm.assign(static_cast<size_t>(D), 1.0f);
    l.attn_sub_norm.assign(static_cast<size_t>(D), 1.0f);
    l.ffn_norm.assign(static_cast<size_t>(D), 1.0f);
    l.ffn_sub_norm.assign(static_cast<size_t>(F), 1.0f);
    random_ternary(l.wq, D, D, mix(seed, tensor++), pool);
    random_ternary(l.wk, KV, D, mix(seed, tensor++), pool);
    random_ternary(l.wv, KV, D, mix(seed, tensor++), pool);
    random_ternary(l.wo, D, D, mix(seed, tensor++), pool);
    random_ternary(l.w_gate, F, D, mix(seed, tensor++), pool);
    random_ternary(l.w_up, F, D, mix(seed, tensor++), pool);
    random_ternary(l.w_down, D, F, mix(seed, tensor++), pool);
  }
  m.use_engine_layout();
  return m;
}

nlohmann::json run_dryrun(const DryrunOptions& o) {
  if (o.embed_bits != 8 && o.embed_bits != 16)
    throw Error("dry-run embedding bits must be 8 or 16, got " + std::to_string(o.embed_bits), "set DRYRUN_EMBED_BITS=8 or 16");
  if (o.prompt_tokens < 1) throw Error("dry-run needs at least one prompt token", "set DRYRUN_PROMPT_TOKENS >= 1");
  if (o.decode_tokens < 0) throw Error("dry-run decode steps must be >= 0", "set DRYRUN_DECODE_TOKENS >= 0");
  ModelConfig shape = o.shape;
  shape.max_seq_len = std::max(shape.max_seq_len, o.prompt_tokens + o.decode_tokens + 1);
  shape.validate();
  nlohmann::json j;
  j["success"] = false;
  j["shape"] = shape;
  j["settings"] = {{"prompt_tokens", o.prompt_tokens}, {"decode_tokens", o.decode_tokens},
                   {"embed_bits", o.embed_bits},       {"seed", o.seed}};

  const uint64_t rss_before = current_rss_bytes();
  ThreadPool pool(o.threads);
  Timer build;
  const TableFormat tables = o.embed_bits == 8 ? TableFormat::I8 : TableFormat::BF16;
  const PackedModel model = make_random_packed_model(shape, tables, o.seed, pool);
  const double build_s = build.seconds();
  log_info("dryrun: built random packed model in " + std::to_string(build_s) + " s (" +
           std::to_string(model.ternary_bytes() / 1000000) + " MB ternary)");

  const double load_before = load_average();
  std::vector<int32_t> prompt(static_cast<size_t>(o.prompt_tokens));
  SplitMix rng{mix(o.seed, 0x70726f6d7074ull)};
  for (auto& t : prompt) t = static_cast<int32_t>(rng.next() % static_cast<uint64_t>(shape.vocab_size));

  // Statistics and agreement at the configured thread count; timing at every count of
  // timing_threads (1 and the configured count).
  const int threads = pool.size();
  log_info("dryrun: A8 forward pass, " + std::to_string(threads) + " threads");
  const ModeResult a8 = run_mode(model, QuantMode::TernaryA8, o, prompt, threads, true);
  log_info("dryrun: A4 forward pass, " + std::to_string(threads) + " threads");
  const ModeResult a4 = run_mode(model, QuantMode::TernaryA4, o, prompt, threads, true);
  std::vector<std::pair<ModeResult, ModeResult>> timings;
  if (threads > 1) {
    log_info("dryrun: A8 and A4 decode timing, 1 thread");
    timings.emplace_back(run_mode(model, QuantMode::TernaryA8, o, prompt, 1, false),
                         run_mode(model, QuantMode::TernaryA4, o, prompt, 1, false));
  }

  // Agreement: cosine of the final hidden states (the head's input) per prompt position.
  std::vector<double> cos;
  const int64_t D = shape.d_model;
  for (int64_t p = 0; p < o.prompt_tokens; ++p) cos.push_back(cosine(a8.final_hidden.data() + p * D, a4.final_hidden.data() + p * D, D));
  double cmin = 1, cmean = 0;
  for (double c : cos) cmin = std::min(cmin, c), cmean += c / static_cast<double>(cos.size());
  int64_t same = 0;
  for (size_t i = 0; i < a8.generated.size(); ++i) same += a8.generated[i] == a4.generated[i];

  // Bytes of one decode step: every packed weight, the head table and one embedding row, plus the
  // KV cache read at the mean decode position. The floor of a step is these bytes at the bandwidth
  // its paired probe reached (the probe streams the weights and the head: all but ~1% of them).
  const int64_t KV = shape.n_kv_heads * shape.head_dim();
  const double mean_pos = static_cast<double>(o.prompt_tokens) + static_cast<double>(o.decode_tokens) / 2.0;
  const double kv_bytes = 2.0 * static_cast<double>(shape.n_layers) * mean_pos * static_cast<double>(KV) * 4.0;
  const double embed_row = static_cast<double>(model.embed.bytes()) / static_cast<double>(shape.vocab_size);
  const double head_bytes = static_cast<double>(model.head().bytes());
  const double bytes_per_token = static_cast<double>(model.ternary_bytes()) + head_bytes + embed_row + kv_bytes;

  // Per thread count: each step against the probe just before it, in wall time (the verdict: the
  // median over the pairs of each mode, the worse mode) and in CPU time per byte (what a step costs
  // when it does get the CPU; the probe's CPU time includes its memory stalls, so this ratio is 1 for
  // a kernel that only streams).
  auto verdict = [&](const ModeResult& m8, const ModeResult& m4) {
    nlohmann::json v = {{"threads", m8.threads}};
    double worst = 0;
    for (const ModeResult* mr : {&m8, &m4}) {
      std::vector<double> ratio, cpu_ratio, gbps, plain_gbps, pattern_gbps, proj_ratio, head_ratio, between_ms;
      for (size_t i = 0; i < mr->steps.size(); ++i) {
        // Where the step lost time against its probe: the projections' and the head's regions
        // against the probe's regions over the same bytes, and what ran between the step's regions.
        const StepTimes& sp = mr->step_parts[i];
        const StepTimes& pp = mr->probe_parts[i];
        if (pp.projections_s > 0) proj_ratio.push_back(sp.projections_s / pp.projections_s);
        if (pp.head_s > 0) head_ratio.push_back(sp.head_s / pp.head_s);
        between_ms.push_back((sp.total_s - sp.projections_s - sp.head_s) * 1e3);
        const double probe_gbps = static_cast<double>(mr->probe_bytes) / mr->probe_s[i] / 1e9;
        gbps.push_back(probe_gbps);
        plain_gbps.push_back(static_cast<double>(mr->probe_bytes) / mr->plain_probe_s[i] / 1e9);
        pattern_gbps.push_back(static_cast<double>(mr->probe_bytes) / mr->pattern_probe_s[i] / 1e9);
        ratio.push_back(mr->steps[i] / (bytes_per_token / (probe_gbps * 1e9)));
        const double probe_cpu_per_byte = mr->probe_cpu[i] / static_cast<double>(mr->probe_bytes);
        if (probe_cpu_per_byte > 0) cpu_ratio.push_back(mr->step_cpu[i] / bytes_per_token / probe_cpu_per_byte);
      }
      const double med = median(ratio);
      worst = std::max(worst, med);
      v[mr == &m8 ? "a8" : "a4"] = {{"step_seconds", mr->steps},
                                    {"probe_gbps", gbps},
                                    {"step_to_floor_ratios", ratio},
                                    {"step_to_floor_ratio_median", med},
                                    {"cpu_time_per_byte_ratios", cpu_ratio},
                                    {"cpu_time_per_byte_ratio_median", median(cpu_ratio)},
                                    {"decode_s_per_token_median", median(mr->steps)},
                                    {"probe_gbps_median", median(gbps)},
                                    {"plain_read_gbps", plain_gbps},
                                    {"plain_read_gbps_median", median(plain_gbps)},
                                    {"kernel_pattern_read_gbps", pattern_gbps},
                                    {"kernel_pattern_read_gbps_median", median(pattern_gbps)},
                                    {"floor_s_per_token_median", bytes_per_token / (median(gbps) * 1e9)},
                                    {"projections_vs_probe_median", median(proj_ratio)},
                                    {"head_vs_probe_median", median(head_ratio)},
                                    {"between_regions_ms_median", median(between_ms)}};
    }
    v["decode_to_floor_ratio"] = worst;
    v["target_met"] = o.decode_tokens == 0 || worst <= o.max_decode_floor_ratio;
    return v;
  };
  nlohmann::json per_threads = nlohmann::json::array();
  for (const auto& [m8, m4] : timings) per_threads.push_back(verdict(m8, m4));
  per_threads.push_back(verdict(a8, a4));
  bool bandwidth_met = true;
  for (const auto& v : per_threads) bandwidth_met = bandwidth_met && v["target_met"].get<bool>();
  const uint64_t peak = peak_rss_bytes();

  j["build_seconds"] = build_s;
  j["weight_bytes"] = {{"ternary_packed", model.ternary_bytes()},
                       {"embedding", model.embed.bytes()},
                       {"lm_head", shape.tie_embeddings ? 0 : model.lm_head.bytes()},
                       {"norms", (shape.n_layers * (3 * D + shape.ffn_dim) + D) * 4},
                       {"total", model.ternary_bytes() + model.table_bytes()},
                       {"ternary_bits_per_weight", 2.0}};
  j["memory"] = {{"peak_rss_bytes", peak},
                 {"rss_before_bytes", rss_before},
                 {"peak_rss_gb", static_cast<double>(peak) / 1e9},
                 {"target_gb", o.max_rss_gb},
                 {"target_met", static_cast<double>(peak) / 1e9 <= o.max_rss_gb}};
  j["bandwidth"] = {{"kernels", best_kernels().name},
                    {"decode_bytes_per_token", bytes_per_token},
                    {"probe_bytes", a8.probe_bytes},
                    {"pairs_per_mode", o.decode_tokens},
                    {"per_threads", per_threads},
                    {"load_average_1min_before", load_before},
                    {"load_average_1min_after", load_average()},
                    {"target_ratio", o.max_decode_floor_ratio},
                    {"target_met", bandwidth_met}};
  j["a8"] = a8.json;
  j["a4"] = a4.json;
  j["agreement"] = {{"final_hidden_cosine_per_position", cos},
                    {"cosine_min", cmin},
                    {"cosine_mean", cmean},
                    {"greedy_tokens_equal", same},
                    {"greedy_tokens_total", a8.generated.size()}};
  const bool checks = a8.codes_ok && a4.codes_ok && a8.acc_ok && a4.acc_ok && a8.finite && a4.finite;
  j["checks"] = {{"a4_codes_in_range", a4.codes_ok},
                 {"a8_codes_in_range", a8.codes_ok},
                 {"int32_no_overflow", a8.acc_ok && a4.acc_ok},
                 {"all_finite", a8.finite && a4.finite}};
  j["targets_met"] = j["memory"]["target_met"].get<bool>() && j["bandwidth"]["target_met"].get<bool>();
  j["success"] = checks;
  return j;
}

}  // namespace bkd

#pragma once
// What the engine benchmarks share: the cpu preset's student shape (configs/cpu.env), the tokens/s
// counter and the engine's decode and prefill loops.
#include <benchmark/benchmark.h>

#include <vector>

#include "core/engine/engine.h"
#include "core/model/model_config.h"

namespace bkd {

// vocab 8000, d 256, 6 layers, 8 heads, FFN 704, context 256, tied embedding: STUDENT_* in configs/cpu.env.
inline ModelConfig cpu_preset_student_shape() {
  ModelConfig c;
  c.vocab_size = 8000;
  c.d_model = 256;
  c.n_layers = 6;
  c.n_heads = 8;
  c.n_kv_heads = 8;
  c.ffn_dim = 704;
  c.max_seq_len = 256;
  c.tie_embeddings = true;
  c.bitlinear = true;
  return c;
}

inline void set_tok_per_s(benchmark::State& st, int64_t tokens_per_iter) {
  st.counters["tok/s"] = benchmark::Counter(static_cast<double>(tokens_per_iter), benchmark::Counter::kIsIterationInvariantRate);
}

// n token ids spread over the vocabulary, the same in every benchmark.
inline std::vector<int32_t> bench_tokens(int64_t n, int64_t vocab) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[i] = static_cast<int32_t>((i * 7919) % vocab);
  return t;
}

inline EngineOptions bench_engine_options(QuantMode mode, int threads) {
  EngineOptions o;
  o.mode = mode;
  o.threads = threads;
  return o;
}

// One decode step at `context`: the cache is cut back to `context` before every step.
inline void run_engine_decode(benchmark::State& st, const PackedModel& m, QuantMode mode, int threads, int64_t context) {
  Engine e(m, bench_engine_options(mode, threads));
  const auto t = bench_tokens(context + 1, m.cfg.vocab_size);
  std::vector<float> logits(static_cast<size_t>(m.cfg.vocab_size));
  e.forward(t.data(), context, logits.data());
  for (auto _ : st) {
    e.rewind(context);
    e.forward(&t[context], 1, logits.data());
  }
  set_tok_per_s(st, 1);
}

// A prompt of `prompt` tokens from an empty cache; the last position's logits, or every position's.
inline void run_engine_prefill(benchmark::State& st, const PackedModel& m, QuantMode mode, int threads, int64_t prompt,
                               bool all_logits) {
  Engine e(m, bench_engine_options(mode, threads));
  const auto t = bench_tokens(prompt, m.cfg.vocab_size);
  std::vector<float> logits(static_cast<size_t>((all_logits ? prompt : 1) * m.cfg.vocab_size));
  for (auto _ : st) {
    e.reset();
    e.forward(t.data(), prompt, logits.data(), all_logits);
  }
  set_tok_per_s(st, prompt);
}

}  // namespace bkd

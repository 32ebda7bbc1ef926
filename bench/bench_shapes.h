#pragma once
// What the engine benchmarks share: the cpu preset's student shape (configs/cpu.env) and the
// tokens/s counter.
#include <benchmark/benchmark.h>

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

}  // namespace bkd

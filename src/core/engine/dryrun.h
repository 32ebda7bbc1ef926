#pragma once
// The 7B-shaped forward-pass dry-run (seed milestone M4): LLaMA-7B shapes with seeded random ternary
// weights generated directly in packed form (never as floats), 8- or 16-bit embedding and head
// tables; a prompt forward pass and greedy decode steps in A8, then in A4; memory, timing against
// the memory-bandwidth floor measured in the same run, per-layer activation statistics and
// A8-vs-A4 agreement. The CLI verb `dryrun` writes the result as REPORTS_DIR/dryrun_7b.json.
#include <cstdint>

#include <nlohmann/json.hpp>

#include "core/engine/packed_model.h"
#include "core/engine/thread_pool.h"

namespace bkd {

// LLaMA-7B: d 4096, 32 layers, 32 heads (no GQA), FFN 11008, vocab 32000, untied head.
ModelConfig llama7b_shape();

struct DryrunOptions {
  ModelConfig shape = llama7b_shape();
  int64_t prompt_tokens = 16;
  int64_t decode_tokens = 8;  // decode steps per mode and thread count: the probe/step pairs
  int embed_bits = 8;  // 8 or 16
  int threads = 0;     // 0: one per online CPU; above 1, decode is also timed with 1 thread
  uint64_t seed = 42;
  double max_rss_gb = 2.5;             // target: peak RSS
  double max_decode_floor_ratio = 1.25;  // target: median decode step / its paired floor, worse mode
  double min_prefill_to_decode = 8.0;    // target: prompt tokens/s over decode tokens/s, same threads
};

// Random ternary model in packed form: codes uniform over {-1, 0, +1}, scale 1 / sqrt(2/3 * in)
// (keeps activations near unit RMS), norm gains 1, tables uniform in [-1, 1].
PackedModel make_random_packed_model(const ModelConfig& shape, TableFormat tables, uint64_t seed, ThreadPool& pool);

// Runs the whole dry-run and returns the report body. Never throws for a missed target (the body
// says which target was missed); throws Error for invalid options.
nlohmann::json run_dryrun(const DryrunOptions& opts);

}  // namespace bkd

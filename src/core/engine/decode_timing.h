#pragma once
// Student decode speed through the packed engine, measured the way `eval` and the benchmarks
// report it: one Engine (fresh KV cache), the prompt in one forward pass (prefill), then greedy
// decode steps of one token each, every step timed on its own (wall and process CPU time), the
// head included (a step is what a server does per generated token).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/engine/packed_model.h"
#include "core/util/sysinfo.h"

namespace bkd {

struct DecodeTiming {
  std::string kernels;  // kernel set name
  QuantMode mode = QuantMode::TernaryA8;
  int threads = 0;
  int64_t prompt_tokens = 0, decode_tokens = 0;
  double prefill_s = 0;
  std::vector<double> step_s, step_cpu_s;  // per decode step
  double decode_s = 0;                     // sum of step_s
  double decode_tokens_per_s = 0;          // decode_tokens / decode_s
  double ms_per_token_mean = 0, ms_per_token_median = 0, ms_per_token_best = 0;
  double prefill_tokens_per_s = 0;
  std::vector<int32_t> tokens;  // the greedy continuation (n decode steps + the last choice)
};

// prompt: non-empty token ids; n_tokens: decode steps (the prompt plus the steps must fit the
// model's context, Error otherwise); threads: 0 = one per core; mode: nullopt = the mode the model
// records (A8 when it records none).
DecodeTiming measure_decode_tps(const PackedModel& model, const std::vector<int32_t>& prompt, int64_t n_tokens,
                                int threads, std::optional<QuantMode> mode = std::nullopt);

// Fills decode_s, decode_tokens_per_s, the ms-per-token figures and prefill_tokens_per_s from step_s,
// prefill_s and prompt_tokens.
void summarize_decode_steps(DecodeTiming& r);

// The timing loop every decoder shares (the packed engine here, the LibTorch teacher in
// torch/model_api.h): prefill() runs the prompt; then n_tokens times pick() chooses the next token
// from the last logits (untimed) and step(token) runs it (timed, wall and process CPU). Fills
// tokens, prefill_s, step_s, step_cpu_s and the summary; the caller sets the rest.
template <typename Prefill, typename Pick, typename Step>
void time_greedy_decode(DecodeTiming& r, int64_t n_tokens, Prefill prefill, Pick pick, Step step) {
  Timer t;
  prefill();
  r.prefill_s = t.seconds();
  for (int64_t i = 0; i < n_tokens; ++i) {
    const int32_t next = pick();
    r.tokens.push_back(next);
    const double c0 = process_cpu_seconds();
    t.reset();
    step(next);
    r.step_s.push_back(t.seconds());
    r.step_cpu_s.push_back(process_cpu_seconds() - c0);
  }
  r.tokens.push_back(pick());
  summarize_decode_steps(r);
}

}  // namespace bkd

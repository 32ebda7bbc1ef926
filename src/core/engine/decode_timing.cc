#include "core/engine/decode_timing.h"

#include <algorithm>

#include "core/engine/engine.h"
#include "core/engine/sampler.h"
#include "core/util/error.h"
#include "core/util/sysinfo.h"

namespace bkd {

DecodeTiming measure_decode_tps(const PackedModel& model, const std::vector<int32_t>& prompt, int64_t n_tokens,
                                int threads, std::optional<QuantMode> mode) {
  if (prompt.empty()) throw Error("measure_decode_tps needs a non-empty prompt");
  if (n_tokens < 1) throw Error("measure_decode_tps needs at least one decode step, got " + std::to_string(n_tokens));
  const int64_t need = static_cast<int64_t>(prompt.size()) + n_tokens;
  if (need > model.cfg.max_seq_len)
    throw Error("prompt (" + std::to_string(prompt.size()) + " tokens) plus " + std::to_string(n_tokens) +
                    " decode steps exceed the model's context of " + std::to_string(model.cfg.max_seq_len),
                "use a shorter prompt or fewer decode steps");
  EngineOptions o;
  o.mode = mode ? *mode : model.trained_mode.value_or(QuantMode::TernaryA8);
  o.threads = threads;
  o.max_seq_len = need;
  Engine e(model, o);
  const int64_t V = model.cfg.vocab_size;
  std::vector<float> logits(static_cast<size_t>(V));
  DecodeTiming r;
  r.kernels = e.kernels().name;
  r.mode = o.mode;
  r.threads = e.threads();
  r.prompt_tokens = static_cast<int64_t>(prompt.size());
  r.decode_tokens = n_tokens;
  time_greedy_decode(
      r, n_tokens, [&] { e.forward(prompt.data(), r.prompt_tokens, logits.data()); },
      [&] { return argmax(logits.data(), V); }, [&](int32_t next) { e.forward(&next, 1, logits.data()); });
  return r;
}

void summarize_decode_steps(DecodeTiming& r) {
  r.decode_s = 0;
  for (double s : r.step_s) r.decode_s += s;
  std::vector<double> sorted = r.step_s;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  if (n == 0) return;
  r.decode_tokens_per_s = r.decode_s > 0 ? static_cast<double>(n) / r.decode_s : 0;
  r.ms_per_token_mean = 1e3 * r.decode_s / static_cast<double>(n);
  r.ms_per_token_median = 1e3 * (n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]));
  r.ms_per_token_best = 1e3 * sorted.front();
  r.prefill_tokens_per_s = r.prefill_s > 0 ? static_cast<double>(r.prompt_tokens) / r.prefill_s : 0;
}

}  // namespace bkd

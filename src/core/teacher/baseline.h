#pragma once
// The teacher baseline (seed M1): a deterministic greedy decode over prompts drawn from the
// held-out split, measuring throughput, latency, usage and cost, and checking that the same prompt
// twice gives the same tokens.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/teacher/provider.h"

namespace bkd {

struct BaselinePrompt {
  std::string id;  // "<document id>#<chunk>"
  std::string source;
  std::string text;
};

// Prompt length in student tokens is approximated by whitespace words: English prose averages about
// 1.3 BPE tokens per word, so a prompt holds ceil(prompt_tokens / 1.3) words (the exact spacing of
// the source text is kept). Prompts are consecutive chunks taken round-robin across documents in
// sample order (corpus.h: in_sample_order with `sample_seed`; file order without one): the first
// chunk of every document, then the second, ... — deterministic.
constexpr double kTokensPerWord = 1.3;
std::vector<BaselinePrompt> draw_baseline_prompts(const std::string& split_jsonl, int count, int prompt_tokens,
                                                  std::optional<uint64_t> sample_seed = std::nullopt);
std::string prompt_length_method();

struct BaselineOptions {
  int max_new_tokens = 64;
  int top_k = 20;             // asked for when the provider gives logprobs (capped at its max)
  double temperature = 0;
  uint64_t seed = 42;
  int in_flight = 1;          // concurrent requests
  double price_per_1k_tokens = 0;
  int determinism_prompts = 3;  // prompts generated a second time, bypassing the response cache
};

// Runs the baseline and returns the report body (the caller adds the header and writes it).
// Throws on provider errors that would fail every request (bad key, unknown model).
nlohmann::json run_baseline(Provider& provider, const std::vector<BaselinePrompt>& prompts, const BaselineOptions& opts);

// Linear-interpolated percentile of unsorted values (p in [0, 1]); NaN for no values.
double percentile(std::vector<double> values, double p);
nlohmann::json distribution_json(const std::vector<double>& values);

}  // namespace bkd

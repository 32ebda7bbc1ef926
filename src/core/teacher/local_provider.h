#pragma once
// The `local` provider: an in-process LocalLanguageModel. Exact top-K and Other from the full
// softmax, greedy or seeded temperature sampling, and scoring of given text (teacher forcing).
// Reported logprobs are the model's own distribution (temperature 1), whatever the sampling
// temperature: that is the distribution KD wants (vLLM's default "raw" mode does the same).
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/teacher/draws.h"
#include "core/teacher/local_model.h"
#include "core/teacher/provider.h"

namespace bkd {

class LocalProvider : public Provider {
 public:
  // Shares the model (serve hands the same model to several request threads).
  explicit LocalProvider(std::shared_ptr<LocalLanguageModel> model);
  std::string name() const override { return "local"; }
  std::string model() const override;
  Capabilities capabilities() override;
  Generation generate(const GenerateRequest& req) override;
  Scoring score(const std::string& text, int top_k) override;
  Scoring score_sampled(const std::string& text, int draws, uint64_t seed) override;
  const LocalLanguageModel& language_model() const { return *model_; }

 private:
  GeneratedToken make_token(int32_t id, const std::vector<double>& logprobs, int top_k) const;
  GeneratedToken unpredicted_token(int32_t id) const;  // a text's first token: nothing predicts it
  GeneratedToken scored_token(int32_t id, double logprob, int32_t rank);
  // The model's logits rows for `ids` (one call at a time), checked to be one per token.
  std::vector<std::vector<float>> sequence_logits(const std::vector<int32_t>& ids);
  const std::string& token_bytes(int32_t id);  // decoded once per id (stable references)
  std::shared_ptr<LocalLanguageModel> model_;
  std::mutex mu_;  // models need not be thread-safe: one call at a time
  std::mutex bytes_mu_;
  std::vector<std::unique_ptr<std::string>> bytes_;
};

}  // namespace bkd

#pragma once
// The in-process teacher, seen from core. The trained model lives on the LibTorch side (core never
// depends on LibTorch): it implements this interface and registers a loader, and the `local`
// provider and `serve` work through it. Tests implement it with small deterministic tables.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tokenizer/tokenizer.h"

namespace bkd {
class Settings;

// A whole sequence scored with top-K, for row i = the distribution after tokens[0..i] (predicting
// tokens[i+1]); rows = tokens - 1.
struct TopKScores {
  int k = 0;                         // candidates per row (min(K, vocabulary))
  std::vector<int32_t> ids;          // rows x k, most likely first
  std::vector<double> logprobs;      // rows x k, natural log, temperature 1
  std::vector<double> log_other;     // per row: log of the mass outside the row's top-K
  std::vector<double> next_logprob;  // per row: log-prob of tokens[i+1]
  std::vector<int32_t> next_rank;    // per row: rank of tokens[i+1] (1 = most likely)
};

// A whole sequence scored by seeded draws (sampled KD, core/teacher/draws.h); rows as TopKScores.
struct SampledScores {
  std::vector<std::vector<std::pair<int32_t, int32_t>>> rows;  // per row: (token id, count), most frequent first
  std::vector<double> next_logprob;                            // per row: log-prob of tokens[i+1]
  std::vector<int32_t> next_rank;                              // per row: its rank (1 = most likely)
};

class LocalLanguageModel {
 public:
  virtual ~LocalLanguageModel() = default;
  virtual std::string name() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual int32_t vocab_size() const = 0;  // length of every logits vector
  virtual int32_t eos_id() const = 0;
  virtual int32_t max_context() const = 0;  // longest context accepted; 0 = unlimited
  // Logits for the token after `context` (non-empty, at most max_context tokens).
  virtual std::vector<float> next_logits(const std::vector<int32_t>& context) = 0;
  // Row i = logits after tokens[0..i] (predicting tokens[i+1]); one row per token. The default
  // calls next_logits per prefix; a real model does it in one forward pass.
  virtual std::vector<std::vector<float>> sequence_logits(const std::vector<int32_t>& tokens);
  // Top-K scoring of a whole sequence next to the forward pass (a real model does the softmax and
  // top-K vectorized, without handing the full logits over). false when not provided: the local
  // provider then computes it from sequence_logits in double precision.
  virtual bool score_top_k(const std::vector<int32_t>& tokens, int k, TopKScores& out) { return false; }
  // Sampled scoring: row i holds `draws` draws from the distribution after tokens[0..i], made as
  // draws.h defines them with row_seed(seed, i) over the model's classes in order. false when not
  // provided: the local provider then draws from sequence_logits in double precision (the reference).
  virtual bool score_samples(const std::vector<int32_t>& tokens, int draws, uint64_t seed, SampledScores& out) {
    return false;
  }
};

// How core obtains the trained teacher without linking LibTorch: the torch side installs a loader
// (from the CLI's torch sources). It returns nullptr when no trained teacher exists.
using LocalModelLoader =
    std::function<std::unique_ptr<LocalLanguageModel>(const Settings& settings, const std::string& model_name)>;
void set_local_model_loader(LocalModelLoader loader);
bool has_local_model_loader();
// Loads TEACHER_MODEL via the installed loader; throws a bkd::Error naming the command that trains
// the teacher when there is no loader (a build without LibTorch) or no trained checkpoint.
std::unique_ptr<LocalLanguageModel> load_local_model(const Settings& settings, const std::string& model_name);

}  // namespace bkd

#pragma once
// The packed student as a LocalLanguageModel, so the `local` provider and `serve` can run it
// through the engine (no LibTorch). It keeps the KV cache of the last context: a call whose context
// extends the previous one (the usual decode loop) only runs the new tokens; a context that shares
// a shorter prefix rewinds the cache to it.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/engine/engine.h"
#include "core/engine/packed_model.h"
#include "core/teacher/local_model.h"
#include "core/tokenizer/tokenizer.h"

namespace bkd {

class EngineLanguageModel : public LocalLanguageModel {
 public:
  // Takes ownership of the model and the tokenizer; the tokenizer's vocabulary must fit the
  // model's (Error otherwise, naming both sizes).
  EngineLanguageModel(std::string name, std::shared_ptr<const PackedModel> model, std::unique_ptr<Tokenizer> tokenizer,
                      EngineOptions opts = {});

  std::string name() const override { return name_; }
  const Tokenizer& tokenizer() const override { return *tok_; }
  int32_t vocab_size() const override { return static_cast<int32_t>(model_->cfg.vocab_size); }
  int32_t eos_id() const override { return tok_->eos_id(); }
  int32_t max_context() const override { return static_cast<int32_t>(engine_->max_seq_len()); }
  std::vector<float> next_logits(const std::vector<int32_t>& context) override;
  std::vector<std::vector<float>> sequence_logits(const std::vector<int32_t>& tokens) override;

  const Engine& engine() const { return *engine_; }
  // Tokens the last next_logits call did not have to recompute (prefix reuse), for tests/metrics.
  int64_t reused_tokens() const { return reused_; }

 private:
  std::string name_;
  std::shared_ptr<const PackedModel> model_;
  std::unique_ptr<Tokenizer> tok_;
  std::unique_ptr<Engine> engine_;
  std::vector<int32_t> cached_;  // tokens in the KV cache, positions 0 .. cached_.size()-1
  int64_t reused_ = 0;
};

// A model already in memory (e.g. read from a Hugging Face folder, core/format/hf_bitnet.h) with the
// student's tokenizer, for serving; mode as below.
std::unique_ptr<EngineLanguageModel> make_engine_language_model(const std::string& name, std::shared_ptr<PackedModel> model,
                                                                std::unique_ptr<Tokenizer> tokenizer,
                                                                std::optional<QuantMode> mode, int threads);

// Loads a packed model file (gguf_model.h) for serving with the student's tokenizer.
// mode: TernaryA8 or TernaryA4; nullopt takes the mode the file records (A8 for files that record
// none). Throws Error naming the file that is missing or wrong.
std::unique_ptr<EngineLanguageModel> load_engine_language_model(const std::string& model_path,
                                                                std::unique_ptr<Tokenizer> tokenizer,
                                                                std::optional<QuantMode> mode, int threads);
// The same with the tokenizer at a path: a SentencePiece .model or a tokenizer folder (load_tokenizer_path).
std::unique_ptr<EngineLanguageModel> load_engine_language_model(const std::string& model_path,
                                                                const std::string& tokenizer_path,
                                                                std::optional<QuantMode> mode, int threads);

}  // namespace bkd

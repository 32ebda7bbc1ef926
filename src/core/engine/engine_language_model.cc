#include "core/engine/engine_language_model.h"

#include <algorithm>

#include "core/engine/gguf_model.h"
#include "core/tokenizer/run_tokenizers.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd {

EngineLanguageModel::EngineLanguageModel(std::string name, std::shared_ptr<const PackedModel> model,
                                         std::unique_ptr<Tokenizer> tokenizer, EngineOptions opts)
    : name_(std::move(name)), model_(std::move(model)), tok_(std::move(tokenizer)) {
  if (!model_ || !tok_) throw Error("engine language model needs a model and a tokenizer");
  if (tok_->vocab_size() > model_->cfg.vocab_size)
    throw Error("tokenizer vocabulary (" + std::to_string(tok_->vocab_size()) + ") is larger than the model's (" +
                    std::to_string(model_->cfg.vocab_size) + ")",
                "serve the model with the student tokenizer it was trained with (STUDENT_TOKENIZER or DATA_DIR)");
  engine_ = std::make_unique<Engine>(*model_, opts);
}

std::vector<float> EngineLanguageModel::next_logits(const std::vector<int32_t>& context) {
  const int64_t n = static_cast<int64_t>(context.size());
  if (n == 0) throw Error("next_logits needs a non-empty context");
  if (n > engine_->max_seq_len())
    throw Error("context of " + std::to_string(n) + " tokens is longer than the model's " +
                std::to_string(engine_->max_seq_len()));
  // Longest shared prefix with the cache, leaving at least the last token to run (its logits).
  int64_t keep = 0;
  const int64_t limit = std::min<int64_t>(static_cast<int64_t>(cached_.size()), n - 1);
  while (keep < limit && cached_[keep] == context[keep]) ++keep;
  engine_->rewind(std::min<int64_t>(keep, engine_->position()));
  keep = engine_->position();
  cached_.resize(static_cast<size_t>(keep));
  std::vector<float> logits(static_cast<size_t>(model_->cfg.vocab_size));
  try {
    engine_->forward(context.data() + keep, n - keep, logits.data());
  } catch (...) {
    engine_->reset();
    cached_.clear();
    throw;
  }
  cached_.insert(cached_.end(), context.begin() + keep, context.end());
  reused_ = keep;
  return logits;
}

std::vector<std::vector<float>> EngineLanguageModel::sequence_logits(const std::vector<int32_t>& tokens) {
  const int64_t n = static_cast<int64_t>(tokens.size()), V = model_->cfg.vocab_size;
  if (n == 0) return {};
  if (n > engine_->max_seq_len()) return LocalLanguageModel::sequence_logits(tokens);  // sliding windows
  std::vector<float> all(static_cast<size_t>(n * V));
  engine_->reset();
  cached_.clear();
  engine_->forward(tokens.data(), n, all.data(), true);
  cached_ = tokens;
  std::vector<std::vector<float>> rows(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) rows[i].assign(all.begin() + i * V, all.begin() + (i + 1) * V);
  return rows;
}

std::unique_ptr<EngineLanguageModel> make_engine_language_model(const std::string& name, std::shared_ptr<PackedModel> model,
                                                                std::unique_ptr<Tokenizer> tokenizer,
                                                                std::optional<QuantMode> mode, int threads) {
  EngineOptions o;
  o.mode = mode ? *mode : model->trained_mode.value_or(QuantMode::TernaryA8);
  o.threads = threads;
  return std::make_unique<EngineLanguageModel>(name, std::move(model), std::move(tokenizer), o);
}

std::unique_ptr<EngineLanguageModel> load_engine_language_model(const std::string& model_path,
                                                                std::unique_ptr<Tokenizer> tokenizer,
                                                                std::optional<QuantMode> mode, int threads) {
  if (!file_exists(model_path))
    throw Error("packed student model " + model_path + " does not exist",
                "export it first: `bitnet-kde export` (writes CKPT_DIR/student.gguf), or pass its path");
  auto model = std::make_shared<PackedModel>(load_packed_model(model_path));
  std::string name = model_path.substr(model_path.find_last_of('/') == std::string::npos ? 0 : model_path.find_last_of('/') + 1);
  if (const size_t dot = name.rfind('.'); dot != std::string::npos && dot > 0) name.resize(dot);
  return make_engine_language_model(name, std::move(model), std::move(tokenizer), mode, threads);
}

std::unique_ptr<EngineLanguageModel> load_engine_language_model(const std::string& model_path,
                                                                const std::string& tokenizer_path,
                                                                std::optional<QuantMode> mode, int threads) {
  if (!file_exists(tokenizer_path) && !dir_exists(tokenizer_path))
    throw Error("student tokenizer " + tokenizer_path + " does not exist",
                "run `bitnet-kde prepare` or set STUDENT_TOKENIZER to the .model the student was trained with");
  return load_engine_language_model(model_path, load_tokenizer_path(tokenizer_path), mode, threads);
}

}  // namespace bkd

#pragma once
// A trimmed output vocabulary for the offline teacher. The GPT-2 head (50257 rows) dominates the
// teacher's cost on CPU while most GPT-2 ids never occur in the training split; the teacher therefore
// predicts only
//   class i < kept.size():  the external (GPT-2) id kept[i]          (ids seen >= min_count times)
//   class kept.size():      "rare", every other external id, its probability spread uniformly
// so P(id) = P(rare) / rare_count for a rare id: a proper distribution over the whole external
// vocabulary, with the rare mass learned from the ids that occur only a few times in training
// (they are the rare class's training targets). Inputs map the same way (rare ids share one row).
// The map lives in the teacher checkpoint's state.json; load_model / forward_logits apply it, so
// everything downstream (local provider, collect, projection, eval) sees real GPT-2 ids and
// full-width logits.
#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <memory>
#include <vector>


namespace bkd {

class TokenFile;

struct VocabMap {
  int64_t full_size = 0;      // external vocabulary size; 0: no map (identity)
  std::vector<int32_t> kept;  // external ids with a class of their own, ascending

  bool enabled() const { return full_size > 0; }
  int64_t rare_count() const { return full_size - int64_t(kept.size()); }
  // Classes the model predicts: kept ids, plus the rare class when any id is rare.
  int64_t model_vocab() const { return int64_t(kept.size()) + (rare_count() > 0 ? 1 : 0); }

  // [full_size] int64: external id -> model class.
  torch::Tensor to_model_lut() const;
  // Maps external ids (any shape, int64) to model classes; throws on ids outside [0, full_size).
  torch::Tensor to_model(const torch::Tensor& ids) const;
  // Model logits [..., model_vocab] -> external logits [..., full_size] (same dtype): kept ids take their
  // class's logit, rare ids the rare logit - log(rare_count), so softmax gives the distribution above.
  torch::Tensor expand_logits(const torch::Tensor& logits) const;

  // Ids of `file` (the tokenized training split) seen at least min_count times (min_count >= 1), plus
  // `always` (e.g. end-of-text, which joins documents without being stored in the file);
  // full_size = the file's vocabulary.
  static VocabMap from_token_counts(const TokenFile& file, int64_t min_count, const std::vector<int32_t>& always = {});

  nlohmann::json to_json() const;
  static VocabMap from_json(const nlohmann::json& j);  // throws Error on an inconsistent map
};

}  // namespace bkd

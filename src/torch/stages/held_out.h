#pragma once
// The held-out text that eval and the experiment score: EVAL_TOKENS of the test split in chunks of
// SEQ_LEN student tokens (the collection plan's sequences, in the seeded document order), each with the
// document text before it as context (score_texts keeps half a model context of it, or starts at the
// document's end-of-text), and the teacher's distributions on the same chunks, collected and projected
// like training data.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torch/eval/eval_quality.h"
#include "torch/stages/eval.h"
#include "torch/train/batch.h"

namespace bkd {
class Settings;
class RunLayout;

struct HeldOut {
  std::vector<ScoredText> chunks;
  std::vector<std::vector<KdPosition>> kd;  // empty when the teacher's rows could not be collected
  nlohmann::json j;                         // what was drawn, for the report
};

// Bytes of document text kept before a chunk as its context: more than half of any context this
// project trains (2048 tokens of a few bytes each); score_texts keeps the last half-context of tokens.
constexpr size_t kHeldOutContextBytes = 16384;

HeldOut held_out_text(const Settings& s, const RunLayout& layout, const EvalSettings& es);

}  // namespace bkd

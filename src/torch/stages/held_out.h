#pragma once
// The held-out text that eval and the experiment score: EVAL_TOKENS of the test split in chunks of
// SEQ_LEN student tokens (the collection plan's sequences, in the seeded document order), and the
// teacher's distributions on the same chunks, collected and projected like training data.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torch/stages/eval.h"
#include "torch/train/batch.h"

namespace bkd {
class Settings;
class RunLayout;

struct HeldOut {
  std::vector<std::string> chunks;
  std::vector<std::vector<KdPosition>> kd;  // empty when the teacher's rows could not be collected
  nlohmann::json j;                         // what was drawn, for the report
};

HeldOut held_out_text(const Settings& s, const RunLayout& layout, const EvalSettings& es);

}  // namespace bkd

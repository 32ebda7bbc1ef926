#pragma once
// The `prepare` stage: corpus -> normalized documents -> train/val/test split by document ->
// student SentencePiece tokenizer (trained on train only) -> tokenized splits for the student and
// the offline teacher (GPT-2 BPE). Skips all work when a manifest says the outputs are current.
#include <string>

#include <nlohmann/json.hpp>

namespace bkd {
class Settings;

struct PrepareOptions {
  bool force = false;  // redo even if outputs are current
};

// Returns the prepare report (also written to REPORTS_DIR/prepare.json).
nlohmann::json run_prepare(const Settings& s, const PrepareOptions& opts = {});

}  // namespace bkd

#pragma once
// The `dryrun` stage (seed M4): the 7B-shaped forward pass through the packed engine
// (core/engine/dryrun.h) with the settings' prompt, decode and table sizes.
#include <string>

#include <nlohmann/json.hpp>

#include "core/model/model_config.h"

namespace bkd {
class Settings;

struct DryrunStageOptions {
  ModelConfig shape;  // default: LLaMA-7B's
  std::string out;    // report path; empty: RunLayout::dryrun_report()
  DryrunStageOptions();
};

// Returns the report (also written to its path, with the path in "_path").
nlohmann::json run_dryrun_stage(const Settings& s, const DryrunStageOptions& opts = {});

}  // namespace bkd

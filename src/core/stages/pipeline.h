#pragma once
// The stage list: every stage of the offline default, in order, as data. `bitnet-kde pipeline` runs it
// (each stage in its own process), `pipeline --until NAME` stops after one stage (the Makefile's stage
// targets call that, so the order is written only here), and each stage's freshness rule decides
// whether its outputs are current.
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace bkd {
class Settings;

struct PipelineStage {
  std::string name;               // the Makefile target and `--until` name: prepare, teacher, collect, ...
  std::string title;              // what the log prints
  std::vector<std::string> args;  // the verb and its flags
  // Empty: the stage decides itself (it skips finished work quickly). Else: true when its outputs are
  // current, with why not in `why`.
  std::function<bool(std::string& why)> current;
};

// The stages for these settings (the teacher's pretraining only when TEACHER_PROVIDER=local), in order.
std::vector<PipelineStage> pipeline_stages(const Settings& s, const std::string& build_commit);
// The names `--until` accepts, in order (the same list for every setting).
std::vector<std::string> pipeline_stage_names();
// The stages up to and including `until` (every stage when not given); throws UsageError naming the
// valid names for any other value, the empty one included.
std::vector<PipelineStage> stages_until(std::vector<PipelineStage> stages, const std::optional<std::string>& until);

}  // namespace bkd

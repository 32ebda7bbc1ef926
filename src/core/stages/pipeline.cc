#include "core/stages/pipeline.h"

#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd {
namespace {
using json = nlohmann::json;
namespace fs = std::filesystem;
using Time = std::optional<fs::file_time_type>;

Time mtime(const std::string& path) {
  std::error_code ec;
  auto t = fs::last_write_time(path, ec);
  if (ec) return std::nullopt;
  return t;
}

// When the role's last checkpoint was written (its newest state file).
Time checkpoint_time(const RunLayout& layout, const std::string& role) {
  const std::string dir = layout.role_checkpoints(role);
  if (!dir_exists(dir)) return std::nullopt;
  Time best;
  for (const auto& name : list_dir(dir)) {
    if (!RunLayout::is_checkpoint_step_name(name)) continue;
    auto t = mtime(RunLayout::checkpoint_state(join_path(dir, name)));
    if (t && (!best || *t > *best)) best = t;
  }
  return best;
}

// A report is current when it was written with today's settings, after every input.
bool report_current(const Settings& s, const std::string& path, const std::vector<Time>& inputs, std::string& why) {
  const std::string name = fs::path(path).filename().string();
  auto t = mtime(path);
  if (!t) return why = name + " does not exist", false;
  json r;
  try {
    r = json::parse(read_file(path));
  } catch (const std::exception&) {
    return why = name + " is not readable", false;
  }
  const json& meta = r.contains("_meta") ? r["_meta"] : json();
  if (meta.value("settings_hash", "") != s.hash()) return why = "settings changed since " + name, false;
  for (const auto& in : inputs)
    if (!in || *in > *t) return why = "an input is newer than " + name, false;
  return true;
}

const std::vector<std::string> kNames = {"ensure-dirs", "prepare", "teacher-pretrain", "teacher", "collect",
                                         "train", "train-ce", "eval", "dryrun"};

}  // namespace

std::vector<std::string> pipeline_stage_names() { return kNames; }

std::vector<PipelineStage> pipeline_stages(const Settings& s, const std::string& build_commit) {
  const RunLayout layout(s);
  const bool local = s.str("TEACHER_PROVIDER") == "local";
  const std::string hf_dir = s.str("TEACHER_MODEL_DIR");  // a Hugging Face teacher: nothing to pretrain
  // The teacher's identity for the report stages: its checkpoint (local), its folder's config.json (a
  // Hugging Face teacher) or the prepared data (API).
  auto teacher_time = [layout, local, hf_dir] {
    if (local && !hf_dir.empty()) return mtime(join_path(hf_dir, "config.json"));
    return local ? checkpoint_time(layout, "teacher") : mtime(layout.prepare_report());
  };
  std::vector<PipelineStage> st;
  st.push_back({"ensure-dirs", "ensure-dirs", {"ensure-dirs"}, nullptr});
  st.push_back({"prepare", "prepare", {"prepare"}, nullptr});
  // Training stages resume an interrupted run (a fresh run when there is no checkpoint).
  if (local && hf_dir.empty()) st.push_back({"teacher-pretrain", "teacher pretraining", {"train", "--role", "teacher", "--resume"}, nullptr});
  st.push_back({"teacher", "teacher baseline", {"teacher"}, [&s, layout, teacher_time](std::string& why) {
                  return report_current(s, layout.teacher_baseline_report(), {teacher_time()}, why);
                }});
  st.push_back({"collect", "collect", {"collect"}, nullptr});
  st.push_back({"train", "student KD training", {"train", "--resume"}, nullptr});
  st.push_back({"train-ce", "CE-only ablation student", {"train", "--role", "student_ce", "--resume"}, nullptr});
  st.push_back({"eval", "eval", {"eval"}, [&s, layout, teacher_time](std::string& why) {
                  return report_current(s, layout.eval_report(),
                                        {checkpoint_time(layout, "student"), checkpoint_time(layout, "student_ce"),
                                         teacher_time(), mtime(layout.teacher_baseline_report())},
                                        why);
                }});
  st.push_back({"dryrun", "7B dry-run", {"dryrun"}, [&s, layout, build_commit](std::string& why) {
                  const std::string path = layout.dryrun_report();
                  if (!report_current(s, path, {mtime(path)}, why)) return false;
                  const json r = json::parse(read_file(path));
                  if (r["_meta"].value("git_commit", "") != build_commit)
                    return why = "another build wrote " + fs::path(path).filename().string(), false;
                  return true;
                }});
  return st;
}

std::vector<PipelineStage> stages_until(std::vector<PipelineStage> stages, const std::optional<std::string>& until) {
  if (!until) return stages;
  std::string valid;
  for (const auto& n : kNames) valid += (valid.empty() ? "" : ", ") + n;
  bool known = false;
  for (const auto& n : kNames) known |= n == *until;
  if (!known) throw UsageError("unknown stage '" + *until + "'", "use one of: " + valid);
  for (size_t i = 0; i < stages.size(); ++i)
    if (stages[i].name == *until) {
      stages.resize(i + 1);
      return stages;
    }
  // A stage these settings skip (teacher-pretrain with an API teacher): everything before its place.
  for (size_t i = 0, k = 0; i < stages.size(); ++i) {
    while (k < kNames.size() && kNames[k] != stages[i].name) {
      if (kNames[k] == *until) {
        stages.resize(i);
        return stages;
      }
      ++k;
    }
  }
  return stages;
}

}  // namespace bkd

#pragma once
// The `teacher` stage (seed M1): a greedy baseline of the configured teacher on prompts drawn from the
// validation split: decode speed, latency, usage, cost and determinism (core/teacher/baseline.h).
#include <string>

#include <nlohmann/json.hpp>

namespace bkd {
class Settings;
class Provider;

struct TeacherBaselineOptions {
  std::string out;               // report path; empty: RunLayout::teacher_baseline_report()
  Provider* provider = nullptr;  // null: built from the settings
};

// Returns the report (also written to its path, with the path in "_path").
nlohmann::json run_teacher_baseline(const Settings& s, const TeacherBaselineOptions& opts = {});

}  // namespace bkd

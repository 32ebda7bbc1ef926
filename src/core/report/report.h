#pragma once
// JSON reports with a common header: tool version, git commit, settings hash, machine (CPU model,
// cores, ISA flags, RAM), start/end time, wall seconds, peak RSS. Written atomically. A report belongs
// to a run: it records the run's settings hash and preset.
#include <string>

#include <nlohmann/json.hpp>

#include "core/util/json_file.h"
#include "core/util/sysinfo.h"

namespace bkd {
class Settings;

class Report {
 public:
  Report(std::string kind, const Settings* settings);  // records the start time
  nlohmann::json& body() { return body_; }
  // Adds the header ("_meta") and writes atomically; returns the JSON written.
  nlohmann::json write(const std::string& path);

 private:
  std::string kind_, settings_hash_, preset_, started_at_;
  Timer timer_;
  nlohmann::json body_ = nlohmann::json::object();
};

nlohmann::json machine_info();

}  // namespace bkd

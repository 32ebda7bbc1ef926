#pragma once
// The seed's v0 exit criteria (M0-M4), each read from the files the stages write, with the figure
// that decides it. Used by `health-check` (M3) and by `pipeline` (all of them).
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bkd {
class Settings;

struct Criterion {
  std::string milestone;  // "M0" .. "M4"
  std::string criterion;  // what the seed asks
  std::string figure;     // what this run measured (or why it could not)
  bool pass = false;
};

// M3 from a training health JSON (CKPT_DIR/<role>_health.json). Throws Error when a field is missing.
std::vector<Criterion> m3_criteria(const nlohmann::json& health, const std::string& path);
// M0-M4 from DRIVE_ROOT's folders, reports, KD manifest and health file; a missing file fails its
// criteria with a figure naming the stage that makes it.
std::vector<Criterion> v0_criteria(const Settings& s);
nlohmann::json criteria_json(const std::vector<Criterion>& c);
// A fixed-width table for the terminal.
std::string criteria_table(const std::vector<Criterion>& c);

}  // namespace bkd

#pragma once
// Typed settings. Each setting is declared once (settings_table.cc: name, type, default, group, help,
// secret, range). Precedence, highest first:
//   overrides (--set KEY=VALUE) > process env > .env file > preset (configs/<PRESET>.env) > default.
// `${VAR}` in .env, preset and default values expands against the final values (and the process env
// for names that are not settings), so DATA_DIR=${DRIVE_ROOT}/data follows DRIVE_ROOT wherever it is set.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/util/error.h"

namespace bkd {

enum class SettingType { String, Path, Int, Float, Bool, Enum };

struct SettingSpec {
  const char* name;
  SettingType type;
  const char* default_value;
  const char* group;
  const char* help;
  bool secret = false;
  double min = -1e300;  // Int/Float range, inclusive
  double max = 1e300;
  const char* choices = nullptr;  // Enum: "a|b|c"
  bool required = false;          // must be non-empty
};

const std::vector<SettingSpec>& setting_specs();
const SettingSpec* find_setting_spec(const std::string& name);

struct SettingSource {
  enum Kind { Default, Preset, Dotenv, Env, Override } kind = Default;
  std::string file;  // for Preset/Dotenv
  int line = 0;
  std::string describe() const;  // "default", ".env:7", "configs/cpu.env:3", "environment", "--set"
};

class ConfigError : public UsageError {
 public:
  using UsageError::UsageError;
};

struct LoadOptions {
  std::string env_file;     // empty: $ENV_FILE, else ./.env (a missing default .env is fine)
  std::string presets_dir;  // empty: $BKD_CONFIGS_DIR, ./configs, then the source tree's configs/
  bool use_process_env = true;
  std::map<std::string, std::string> env;        // used instead of the process env when set (tests)
  std::map<std::string, std::string> overrides;  // --set KEY=VALUE
};

class Settings {
 public:
  static Settings load(const LoadOptions& opts = {});

  const std::string& str(const std::string& name) const;  // any type, as text
  int64_t i64(const std::string& name) const;
  double f64(const std::string& name) const;
  bool flag(const std::string& name) const;
  const SettingSource& source(const std::string& name) const;
  const std::vector<std::string>& warnings() const { return warnings_; }
  const std::string& preset() const { return str("PRESET"); }
  std::string preset_file() const { return preset_file_; }
  std::string env_file() const { return env_file_; }

  // Effective settings as JSON: {name: value} or {name: {value, source}}; secrets redacted.
  nlohmann::json to_json(bool with_sources = false) const;
  std::string describe_value(const std::string& name) const;  // redacted when secret
  // SHA-256 over the non-secret effective values: identifies a configuration in reports.
  std::string hash() const;
  // A copy with these values in place of the current ones (source: override), each checked as `load`
  // checks it; derived values (${...}) are not re-expanded. For stages that run variants of one
  // configuration (the experiment's arms).
  Settings with(const std::map<std::string, std::string>& overrides) const;

 private:
  struct Value {
    std::string text;
    SettingSource source;
    int64_t i = 0;
    double f = 0;
    bool b = false;
  };
  const Value& get(const std::string& name) const;
  // Parses `text` as `spec` says into `v`; empty when it is valid, otherwise why not.
  static std::string parse_value(const SettingSpec& spec, const std::string& text, Value& v);
  std::map<std::string, Value> values_;
  std::vector<std::string> warnings_;
  std::string preset_file_, env_file_;
};

// Nearest declared name to `name` (edit distance), or empty when nothing is close.
std::string nearest_setting_name(const std::string& name);

}  // namespace bkd

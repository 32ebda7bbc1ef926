#include "core/config/settings.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/config/dotenv.h"
#include "core/util/fs.h"
#include "core/util/hash.h"
#include "core/util/log.h"

namespace bkd {
namespace {

struct Raw {
  std::string text;
  bool expand = true;
  SettingSource source;
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string type_expectation(const SettingSpec& s) {
  std::ostringstream os;
  auto num = [](double v) {
    std::ostringstream o;
    o << v;
    return o.str();
  };
  switch (s.type) {
    case SettingType::Int:
      os << "an integer (suffix k/M/G allowed)";
      if (s.min > -1e299 || s.max < 1e299) os << " in [" << num(s.min) << ", " << num(s.max) << "]";
      break;
    case SettingType::Float:
      os << "a number";
      if (s.min > -1e299 || s.max < 1e299) os << " in [" << num(s.min) << ", " << num(s.max) << "]";
      break;
    case SettingType::Bool: os << "a boolean (1/0, true/false, yes/no, on/off)"; break;
    case SettingType::Enum: os << "one of " << s.choices; break;
    case SettingType::Path: os << (s.required ? "a non-empty path" : "a path (or empty)"); break;
    case SettingType::String: os << (s.required ? "non-empty text" : "text"); break;
  }
  return os.str();
}

bool parse_int(const std::string& t, int64_t& out) {
  std::string s;
  for (char c : t)
    if (c != '_') s += c;
  if (s.empty()) return false;
  int64_t mult = 1;
  char last = s.back();
  if (last == 'k' || last == 'K') mult = 1000;
  else if (last == 'M') mult = 1000000;
  else if (last == 'G') mult = 1000000000;
  if (mult != 1) s.pop_back();
  if (s.empty()) return false;
  if (mult != 1 && s.find('.') != std::string::npos) {  // "1.2M"
    char* end = nullptr;
    double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size() || !std::isfinite(d)) return false;
    double v = d * static_cast<double>(mult);
    if (v != std::floor(v) || std::fabs(v) > 9e18) return false;
    out = static_cast<int64_t>(v);
    return true;
  }
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (i == s.size()) return false;
  for (size_t j = i; j < s.size(); ++j)
    if (!std::isdigit(static_cast<unsigned char>(s[j]))) return false;
  errno = 0;
  long long v = std::strtoll(s.c_str(), nullptr, 10);
  if (errno == ERANGE) return false;
  if (mult != 1 && (v > INT64_MAX / mult || v < INT64_MIN / mult)) return false;
  out = v * mult;
  return true;
}

bool parse_float(const std::string& s, double& out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE || !std::isfinite(v)) return false;
  out = v;
  return true;
}

bool parse_bool(const std::string& t, bool& out) {
  const std::string s = lower(t);
  if (s == "1" || s == "true" || s == "yes" || s == "on") return out = true, true;
  if (s == "0" || s == "false" || s == "no" || s == "off") return out = false, true;
  return false;
}

std::string find_presets_dir(const LoadOptions& o, const std::map<std::string, std::string>& env) {
  if (!o.presets_dir.empty()) return o.presets_dir;
  auto it = env.find("BKD_CONFIGS_DIR");
  if (it != env.end() && !it->second.empty()) return it->second;
  if (dir_exists("configs")) return "configs";
  return std::string(BKD_SOURCE_DIR) + "/configs";
}

}  // namespace

std::string SettingSource::describe() const {
  switch (kind) {
    case Default: return "default";
    case Preset:
    case Dotenv: return file + ":" + std::to_string(line);
    case Env: return "environment";
    case Override: return "--set";
  }
  return "?";
}

const SettingSpec* find_setting_spec(const std::string& name) {
  for (const auto& s : setting_specs())
    if (name == s.name) return &s;
  return nullptr;
}

std::string nearest_setting_name(const std::string& name) {
  std::string best;
  size_t best_d = 1000;
  const std::string up = [&] {
    std::string u = name;
    for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return u;
  }();
  for (const auto& s : setting_specs()) {
    size_t d = edit_distance(up, s.name);
    if (d < best_d) best_d = d, best = s.name;
  }
  const size_t limit = std::max<size_t>(2, name.size() / 3);
  return best_d <= limit ? best : "";
}

Settings Settings::load(const LoadOptions& opts) {
  Settings out;
  std::vector<std::string> errors;

  // The environment we read: injected (tests) or the process's.
  std::map<std::string, std::string> env = opts.env;
  if (opts.use_process_env && opts.env.empty()) {
    for (const char* extra : {"ENV_FILE", "BKD_CONFIGS_DIR", "HOME", "USER", "PWD", "XDG_CACHE_HOME"})
      if (const char* v = std::getenv(extra)) env[extra] = v;
    for (const auto& s : setting_specs())
      if (const char* v = std::getenv(s.name)) env[s.name] = v;
  }

  std::map<std::string, Raw> raw;
  for (const auto& s : setting_specs()) raw[s.name] = Raw{s.default_value, true, {}};

  auto apply_file = [&](const std::string& path, SettingSource::Kind kind, bool is_preset) {
    std::string text = read_file(path);
    DotenvFile f = parse_dotenv(text, path);
    for (const auto& p : f.problems) errors.push_back(path + ":" + std::to_string(p.line) + ": " + p.message);
    std::map<std::string, int> seen;
    for (const auto& e : f.entries) {
      const std::string where = path + ":" + std::to_string(e.line);
      if (seen.count(e.key)) {
        errors.push_back(where + ": " + e.key + " is set twice (first at line " + std::to_string(seen[e.key]) +
                         "): keep one");
        continue;
      }
      seen[e.key] = e.line;
      if (!find_setting_spec(e.key)) {
        std::string near = nearest_setting_name(e.key);
        out.warnings_.push_back(where + ": unknown setting " + e.key +
                                (near.empty() ? "" : " (did you mean " + near + "?)"));
        continue;
      }
      if (is_preset && e.key == "PRESET") {
        errors.push_back(where + ": a preset file cannot set PRESET");
        continue;
      }
      raw[e.key] = Raw{e.value, e.expand, {kind, path, e.line}};
    }
  };

  // .env first (it may choose the preset), then the preset underneath it.
  std::string env_file = opts.env_file;
  bool env_file_explicit = !env_file.empty();
  if (env_file.empty()) {
    auto it = env.find("ENV_FILE");
    if (it != env.end() && !it->second.empty()) env_file = it->second, env_file_explicit = true;
    else env_file = ".env";
  }
  std::map<std::string, Raw> from_dotenv;
  if (file_exists(env_file)) {
    auto before = raw;
    apply_file(env_file, SettingSource::Dotenv, false);
    for (auto& [k, v] : raw)
      if (v.source.kind == SettingSource::Dotenv) from_dotenv[k] = v;
    raw = before;
    out.env_file_ = env_file;
  } else if (env_file_explicit) {
    throw ConfigError("settings file '" + env_file + "' (ENV_FILE) does not exist",
                      "create it from .env.example: cp .env.example " + env_file);
  }

  // The preset: override > env > .env > default.
  std::string preset = raw["PRESET"].text;
  if (from_dotenv.count("PRESET")) preset = from_dotenv["PRESET"].text;
  if (env.count("PRESET")) preset = env["PRESET"];
  if (opts.overrides.count("PRESET")) preset = opts.overrides.at("PRESET");
  const std::string presets_dir = find_presets_dir(opts, env);
  const std::string preset_path = join_path(presets_dir, preset + ".env");
  if (preset.empty() || preset.find('/') != std::string::npos || !file_exists(preset_path)) {
    std::string available;
    if (dir_exists(presets_dir))
      for (const auto& n : list_dir(presets_dir))
        if (n.size() > 4 && n.compare(n.size() - 4, 4, ".env") == 0)
          available += (available.empty() ? "" : ", ") + n.substr(0, n.size() - 4);
    throw ConfigError("unknown preset '" + preset + "': no file " + preset_path,
                      "set PRESET to one of: " + (available.empty() ? "(none found)" : available));
  }
  apply_file(preset_path, SettingSource::Preset, true);
  out.preset_file_ = preset_path;
  for (auto& [k, v] : from_dotenv) raw[k] = v;
  for (const auto& s : setting_specs()) {
    auto it = env.find(s.name);
    if (it != env.end()) raw[s.name] = Raw{it->second, false, {SettingSource::Env, "", 0}};
  }
  for (const auto& [k, v] : opts.overrides) {
    if (!find_setting_spec(k)) {
      std::string near = nearest_setting_name(k);
      errors.push_back("--set " + k + ": unknown setting" + (near.empty() ? "" : " (did you mean " + near + "?)"));
      continue;
    }
    raw[k] = Raw{v, false, {SettingSource::Override, "", 0}};
  }

  // Expand ${VAR} recursively against the final raw values, then the environment.
  std::map<std::string, std::string> expanded;
  std::set<std::string> in_progress;
  std::function<std::string(const std::string&)> resolve = [&](const std::string& name) -> std::string {
    if (auto it = expanded.find(name); it != expanded.end()) return it->second;
    const Raw& r = raw[name];
    if (!r.expand) return expanded[name] = r.text;
    if (in_progress.count(name)) throw ConfigError("cycle in ${...} references through " + name);
    in_progress.insert(name);
    std::string result;
    const std::string& t = r.text;
    for (size_t i = 0; i < t.size(); ++i) {
      if (t[i] == '\\' && i + 1 < t.size() && t[i + 1] == '$') {
        result += '$';
        ++i;
        continue;
      }
      if (t[i] == '$' && i + 1 < t.size() && t[i + 1] == '{') {
        size_t close = t.find('}', i + 2);
        if (close == std::string::npos)
          throw ConfigError(r.source.describe() + ": " + name + ": unterminated ${ in '" + t + "'",
                            "close the reference with }");
        std::string ref = t.substr(i + 2, close - i - 2);
        std::string fallback;
        bool has_fallback = false;
        if (auto d = ref.find(":-"); d != std::string::npos) {
          fallback = ref.substr(d + 2);
          ref = ref.substr(0, d);
          has_fallback = true;
        }
        std::string value;
        bool found = false;
        if (find_setting_spec(ref)) {
          value = resolve(ref);
          found = true;
        } else if (auto e = env.find(ref); e != env.end()) {
          value = e->second;
          found = true;
        }
        if ((!found || value.empty()) && has_fallback) value = fallback, found = true;
        if (!found)
          throw ConfigError(r.source.describe() + ": " + name + " refers to ${" + ref + "}, which is not set",
                            "define " + ref + " (in .env or the environment) or use ${" + ref + ":-default}");
        result += value;
        i = close;
        continue;
      }
      result += t[i];
    }
    in_progress.erase(name);
    return expanded[name] = result;
  };

  for (const auto& s : setting_specs()) {
    std::string text;
    try {
      text = resolve(s.name);
    } catch (const ConfigError& e) {
      errors.push_back(e.what());
      in_progress.clear();
      continue;
    }
    Value v;
    v.text = text;
    v.source = raw[s.name].source;
    const std::string origin = v.source.describe();
    auto bad = [&](const std::string& why) {
      const std::string shown = s.secret ? "<secret>" : "'" + text + "'";
      errors.push_back(origin + ": " + s.name + "=" + shown + ": " + why + "; expected " + type_expectation(s) +
                       " (" + s.help + ")");
    };
    if (const std::string why = parse_value(s, text, v); !why.empty()) {
      bad(why);
      continue;
    }
    if (s.secret) register_secret(text);
    out.values_[s.name] = std::move(v);
  }

  if (!errors.empty()) {
    std::string msg = errors.size() == 1 ? "invalid setting:\n" : std::to_string(errors.size()) + " invalid settings:\n";
    for (const auto& e : errors) msg += "  " + redact(e) + "\n";
    msg.pop_back();
    throw ConfigError(msg, "fix the values above (see .env.example for every setting), then run again");
  }
  return out;
}

std::string Settings::parse_value(const SettingSpec& s, const std::string& text, Value& v) {
  if (s.required && text.empty()) return "empty";
  switch (s.type) {
    case SettingType::Int:
      if (!parse_int(text, v.i)) return "not an integer";
      if (v.i < s.min || v.i > s.max) return "out of range";
      v.f = static_cast<double>(v.i);
      break;
    case SettingType::Float:
      if (!parse_float(text, v.f)) return "not a number";
      if (v.f < s.min || v.f > s.max) return "out of range";
      break;
    case SettingType::Bool:
      if (!parse_bool(text, v.b)) return "not a boolean";
      break;
    case SettingType::Enum: {
      std::string choices = s.choices, item;
      std::stringstream ss(choices);
      bool ok = false;
      while (std::getline(ss, item, '|')) ok = ok || item == text;
      if (!ok) return "not a known choice";
      break;
    }
    case SettingType::Path:
    case SettingType::String:
      if (text.find('\n') != std::string::npos && s.type == SettingType::Path) return "contains a newline";
      break;
  }
  return "";
}

Settings Settings::with(const std::map<std::string, std::string>& overrides) const {
  Settings out = *this;
  for (const auto& [name, text] : overrides) {
    const SettingSpec* spec = find_setting_spec(name);
    if (!spec) throw Error("internal: setting " + name + " is not declared in settings_table.cc");
    Value v;
    v.text = text;
    v.source.kind = SettingSource::Override;
    if (const std::string why = parse_value(*spec, text, v); !why.empty())
      throw ConfigError(name + "=" + (spec->secret ? std::string("<secret>") : "'" + text + "'") + ": " + why +
                        "; expected " + type_expectation(*spec));
    out.values_[name] = std::move(v);
  }
  return out;
}

const Settings::Value& Settings::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) throw Error("internal: setting " + name + " is not declared in settings_table.cc");
  return it->second;
}

const std::string& Settings::str(const std::string& name) const { return get(name).text; }
int64_t Settings::i64(const std::string& name) const { return get(name).i; }
double Settings::f64(const std::string& name) const { return get(name).f; }
bool Settings::flag(const std::string& name) const { return get(name).b; }
const SettingSource& Settings::source(const std::string& name) const { return get(name).source; }

std::string Settings::describe_value(const std::string& name) const {
  const SettingSpec* s = find_setting_spec(name);
  const std::string& t = str(name);
  if (s && s->secret) return t.empty() ? "(unset)" : "(set, " + std::to_string(t.size()) + " chars, redacted)";
  return t;
}

nlohmann::json Settings::to_json(bool with_sources) const {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& s : setting_specs()) {
    const std::string v = describe_value(s.name);
    if (with_sources)
      j[s.name] = {{"value", v}, {"source", source(s.name).describe()}, {"group", s.group}};
    else
      j[s.name] = v;
  }
  return j;
}

std::string Settings::hash() const {
  Sha256 h;
  for (const auto& s : setting_specs()) {
    if (s.secret) continue;
    h.update(s.name);
    h.update("=", 1);
    h.update(str(s.name));
    h.update("\n", 1);
  }
  return h.hex_digest().substr(0, 16);
}

}  // namespace bkd

#include "core/util/log.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <vector>

namespace bkd {
namespace {

struct LogState {
  std::mutex mu;
  LogLevel level = LogLevel::Info;
  FILE* file = nullptr;
  std::vector<std::string> secrets;
};

LogState& state() {
  static LogState s;
  return s;
}

bool is_key_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; }

// Prefixes of provider keys; the run of key characters after one is masked if long enough.
constexpr std::string_view kKeyPrefixes[] = {"sk-", "gsk_", "AIza", "Bearer ", "bearer ", "x-api-key: ",
                                             "x-goog-api-key: "};

std::string mask_key_shapes(std::string s) {
  for (std::string_view prefix : kKeyPrefixes) {
    size_t pos = 0;
    while ((pos = s.find(prefix, pos)) != std::string::npos) {
      size_t start = pos + prefix.size();
      size_t end = start;
      while (end < s.size() && is_key_char(s[end])) ++end;
      if (end - start >= 12) {
        s.replace(start, end - start, "[REDACTED]");
        pos = start + 10;
      } else {
        pos = end;
      }
    }
  }
  return s;
}

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "?";
}

}  // namespace

void log_set_level(LogLevel level) { state().level = level; }

LogLevel log_level_from_string(const std::string& s) {
  if (s == "debug") return LogLevel::Debug;
  if (s == "warn") return LogLevel::Warn;
  if (s == "error") return LogLevel::Error;
  return LogLevel::Info;
}

void log_set_file(const std::string& path) {
  auto& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  if (st.file) std::fclose(st.file);
  st.file = path.empty() ? nullptr : std::fopen(path.c_str(), "a");
}

void register_secret(const std::string& value) {
  if (value.size() < 4) return;
  auto& st = state();
  std::lock_guard<std::mutex> lock(st.mu);
  if (std::find(st.secrets.begin(), st.secrets.end(), value) == st.secrets.end()) st.secrets.push_back(value);
  // Longest first, so a secret that contains another is masked whole.
  std::sort(st.secrets.begin(), st.secrets.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

std::string redact(std::string_view text) {
  std::string s(text);
  {
    auto& st = state();
    std::lock_guard<std::mutex> lock(st.mu);
    for (const auto& secret : st.secrets) {
      size_t pos = 0;
      while ((pos = s.find(secret, pos)) != std::string::npos) {
        s.replace(pos, secret.size(), "[REDACTED]");
        pos += 10;
      }
    }
  }
  return mask_key_shapes(std::move(s));
}

void log_msg(LogLevel level, const std::string& msg) {
  auto& st = state();
  if (level < st.level) return;
  const std::string line = redact(msg);
  std::lock_guard<std::mutex> lock(st.mu);
  std::fprintf(stderr, "[%s] %s\n", level_name(level), line.c_str());
  if (st.file) {
    std::time_t t = std::time(nullptr);
    char ts[32];
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    std::fprintf(st.file, "%s [%s] %s\n", ts, level_name(level), line.c_str());
    std::fflush(st.file);
  }
}

}  // namespace bkd

#pragma once
// Logging to stderr and (optionally) a file in LOG_DIR. Every line passes through redact():
// registered secret values and anything shaped like a provider key never reach a sink.
#include <string>
#include <string_view>

namespace bkd {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

void log_set_level(LogLevel level);
LogLevel log_level_from_string(const std::string& s);  // debug|info|warn|error
void log_set_file(const std::string& path);             // append; empty closes
void register_secret(const std::string& value);         // values shorter than 4 chars are ignored
std::string redact(std::string_view text);

void log_msg(LogLevel level, const std::string& msg);
inline void log_debug(const std::string& m) { log_msg(LogLevel::Debug, m); }
inline void log_info(const std::string& m) { log_msg(LogLevel::Info, m); }
inline void log_warn(const std::string& m) { log_msg(LogLevel::Warn, m); }
inline void log_error(const std::string& m) { log_msg(LogLevel::Error, m); }

}  // namespace bkd

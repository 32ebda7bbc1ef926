#pragma once
// JSON files written atomically (temp file, fsync, rename) and redacted (log.h): no half-written or
// secret-bearing JSON ever reaches disk.
#include <string>

#include <nlohmann/json.hpp>

namespace bkd {

void write_json_atomic(const std::string& path, const nlohmann::json& j);

}  // namespace bkd

#pragma once
// Settings for provider tests: a clean environment (no process env, an empty .env) with the
// given overrides, caches under a temp folder, and millisecond-scale retries.
#include <map>
#include <string>

#include "core/config/settings.h"
#include "core/util/fs.h"
#include "test_util.h"

namespace bkd::testing {

inline Settings provider_settings(const bkd::test::TempDir& dir, std::map<std::string, std::string> env) {
  write_file_atomic(dir.file(".env"), "");
  LoadOptions o;
  o.env_file = dir.file(".env");
  o.presets_dir = bkd::test::repo_root() + "/configs";
  o.use_process_env = false;
  env.emplace("DRIVE_ROOT", dir.path());
  env.emplace("HTTP_TIMEOUT_S", "2");
  env.emplace("HTTP_MAX_RETRIES", "3");
  env.emplace("HTTP_BACKOFF_BASE_S", "0.002");
  env.emplace("REQUESTS_PER_MIN", "0");
  o.env = std::move(env);
  return Settings::load(o);
}

}  // namespace bkd::testing

#pragma once
// Helpers shared by the Parquet tests: a scratch folder, DuckDB (through node) as an independent
// reader/writer, and exact comparison of the canonical strings duckdb_run.js prints.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/util/fs.h"

namespace bkd::test {

inline std::string scratch_dir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "bkd_" + name + "_" + std::to_string(::getpid());
  ensure_dir(dir);
  return dir;
}

// Empty when DuckDB can be used; otherwise why not (the test then skips).
inline std::string duckdb_missing() {
  if (std::system("node --version >/dev/null 2>&1") != 0) return "node is not installed";
  std::string mod = std::string(BKD_TEST_TOOLS_DIR) + "/node_modules/@duckdb/node-api";
  if (!dir_exists(mod)) return "tests/tools/node_modules/@duckdb/node-api is missing (bash scripts/setup.sh --test-tools)";
  return {};
}

#define BKD_REQUIRE_DUCKDB()                                  \
  do {                                                        \
    std::string why_ = ::bkd::test::duckdb_missing();         \
    if (!why_.empty()) GTEST_SKIP() << why_;                  \
  } while (0)

// Runs the statements (one per element, each on one line) and returns the last one's rows.
inline std::vector<nlohmann::json> duckdb_rows(const std::vector<std::string>& statements, const std::string& dir) {
  std::string sql = dir + "/query.sql", out = dir + "/rows.jsonl", err = dir + "/stderr.txt";
  {
    std::ofstream f(sql);
    for (const auto& s : statements) f << s << "\n";
  }
  std::string cmd = "node '" + std::string(BKD_TEST_TOOLS_DIR) + "/duckdb_run.js' '" + sql + "' '" + out + "' 2>'" + err + "'";
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    ADD_FAILURE() << "duckdb_run.js failed: " << read_file(err);
    return {};
  }
  std::vector<nlohmann::json> rows;
  std::ifstream f(out);
  std::string line;
  while (std::getline(f, line))
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

inline bool same_float(double ours, const nlohmann::json& s) {
  if (!s.is_string()) return false;
  double theirs = std::strtod(s.get<std::string>().c_str(), nullptr);
  if (std::isnan(ours)) return std::isnan(theirs);
  return ours == theirs && std::signbit(ours) == std::signbit(theirs);
}
inline bool same_f32(float ours, const nlohmann::json& s) {
  if (!s.is_string()) return false;
  float theirs = static_cast<float>(std::strtod(s.get<std::string>().c_str(), nullptr));
  if (std::isnan(ours)) return std::isnan(theirs);
  return std::memcmp(&ours, &theirs, 4) == 0;
}
inline bool same_int(int64_t ours, const nlohmann::json& s) {
  return s.is_string() && s.get<std::string>() == std::to_string(ours);
}

}  // namespace bkd::test

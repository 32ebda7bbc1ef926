// `health-check [--role student] [--file PATH]`: the M3 exit criteria, read from the training health
// JSON (CKPT_DIR/<role>_health.json) and printed as pass/fail. Exit 0 when every criterion passes.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/config/run_layout.h"
#include "cli/cli.h"
#include "core/stages/exit_criteria.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd::cli {
namespace {

int run_health_check(const std::string& path) {
  if (!file_exists(path))
    throw Error("no health file at " + path, "train first: `bitnet-kde train` writes it beside the checkpoints");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error("cannot parse " + path + ": " + e.what());
  }
  int failed = 0;
  for (const Criterion& c : m3_criteria(h, path)) {
    std::printf("[%s] %-44s %s\n", c.pass ? "PASS" : "FAIL", c.criterion.c_str(), c.figure.c_str());
    failed += !c.pass;
  }
  std::printf("M3 exit criteria: %s (%s)\n", failed ? "FAIL" : "PASS", path.c_str());
  return failed ? 1 : 0;
}

void setup_health_check(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("health-check", "M3 exit criteria from the training health file: pass/fail");
  static std::string role = "student", file;
  sub->add_option("--role", role, "whose health file (CKPT_DIR/<role>_health.json)");
  sub->add_option("--file", file, "read this health JSON instead");
  sub->callback([&cli] {
    cli.exit_code = run_health_check(file.empty() ? RunLayout(cli.settings()).health(role) : file);
  });
}

RegisterVerb reg_health_check("health-check", 62, setup_health_check);

}  // namespace
}  // namespace bkd::cli

// `health-check [--role student] [--file PATH]`: the M3 exit criteria, read from the training health
// JSON (CKPT_DIR/<role>_health.json) and printed as pass/fail. Exit 0 when every criterion passes.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd::cli {
namespace {

constexpr double kMinSeenTokens = 1e6;
constexpr double kMinFlipFraction = 0.9;
constexpr double kMaxPostClipNorm = 1.0;
constexpr int64_t kLossWindow = 200;
constexpr double kMaxRiseOverWindow = 0.05;  // fitted loss may rise at most 5% of its mean across the window
constexpr double kMaxRelStd = 0.2;           // and scatter at most 20% of its mean

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
  auto check = [&](bool ok, const std::string& name, const std::string& detail) {
    std::printf("[%s] %-44s %s\n", ok ? "PASS" : "FAIL", name.c_str(), detail.c_str());
    if (!ok) ++failed;
  };
  char buf[256];
  try {
    const double seen = h.at("seen_tokens").get<double>();
    std::snprintf(buf, sizeof buf, "%.0f seen tokens", seen);
    check(seen >= kMinSeenTokens, ">= 1M seen tokens", buf);
    const int64_t nans = h.at("nan_count").get<int64_t>();
    check(nans == 0, "no NaN/inf steps", std::to_string(nans) + " NaN steps, " +
                                             std::to_string(h.at("skipped_steps").get<int64_t>()) + " skipped");
    const auto& f = h.at("flip");
    const bool done = f.at("done").get<bool>();
    const double frac = f.at("fraction").get<double>();
    std::snprintf(buf, sizeof buf, "%s at step %lld, %.1f%% of BUDGET_TOKENS", done ? "flipped" : "never flipped",
                  (long long)f.at("step").get<int64_t>(), 100 * frac);
    check(done && frac >= kMinFlipFraction, "A8->A4 flip at >= 90% of the budget", buf);
    const double g = h.at("max_post_clip_grad_norm_last_100").get<double>();
    std::snprintf(buf, sizeof buf, "max %.4f", g);
    check(g <= kMaxPostClipNorm * (1 + 1e-6), "post-clip grad norm <= 1.0 (last 100 steps)", buf);
    const auto& l = h.at("loss_last_200");
    const double mean = l.at("mean").get<double>(), sd = l.at("std").get<double>();
    const double slope = l.at("slope_per_step").get<double>();
    const int64_t n = l.at("count").get<int64_t>();
    const double rise = slope * double(n);
    std::snprintf(buf, sizeof buf, "%lld steps: mean %.4f, std %.4f, fitted change %+.4f", (long long)n, mean, sd, rise);
    check(n >= kLossWindow && std::isfinite(mean) && rise <= kMaxRiseOverWindow * mean && sd <= kMaxRelStd * mean,
          "loss stable over the last 200 steps", buf);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + " lacks a field the check needs: " + e.what(), "it was written by an older version; retrain");
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
    cli.exit_code = run_health_check(file.empty() ? join_path(cli.settings().str("CKPT_DIR"), role + "_health.json") : file);
  });
}

RegisterVerb reg_health_check("health-check", 62, setup_health_check);

}  // namespace
}  // namespace bkd::cli

// `bitnet-kde health-check`: the M3 exit criteria read from a health JSON, pass/fail per criterion.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/util/fs.h"

namespace bkd {
namespace {

nlohmann::json passing_health() {
  return {{"seen_tokens", 1200000},
          {"nan_count", 0},
          {"skipped_steps", 0},
          {"flip", {{"done", true}, {"step", 264}, {"fraction", 0.9}}},
          {"max_post_clip_grad_norm_last_100", 1.0},
          {"loss_last_200", {{"mean", 5.0}, {"std", 0.3}, {"slope_per_step", -0.002}, {"count", 200}}}};
}

int run_check(const nlohmann::json& h, std::string* out) {
  const std::string dir = (std::filesystem::temp_directory_path() / ("bkd_hc_" + std::to_string(::getpid()))).string();
  ensure_dir(dir);
  write_file_atomic(dir + "/h.json", h.dump());
  const std::string cmd = std::string(BKD_CLI_PATH) + " health-check --file " + dir + "/h.json > " + dir + "/out.txt 2>&1";
  const int rc = std::system(cmd.c_str());
  *out = read_file(dir + "/out.txt");
  return rc;
}

TEST(TorchHealthCheck, PassesHealthyRunsAndNamesEachFailedCriterion) {
  std::string out;
  EXPECT_EQ(run_check(passing_health(), &out), 0) << out;
  EXPECT_NE(out.find("M3 exit criteria: PASS"), std::string::npos) << out;

  struct Case { const char* what; nlohmann::json::json_pointer ptr; nlohmann::json value; const char* line; };
  for (const Case& c : {Case{"tokens", nlohmann::json::json_pointer("/seen_tokens"), 999999, ">= 1M seen tokens"},
                        Case{"nan", nlohmann::json::json_pointer("/nan_count"), 1, "no NaN/inf steps"},
                        Case{"early flip", nlohmann::json::json_pointer("/flip/fraction"), 0.85, "A8->A4 flip"},
                        Case{"no flip", nlohmann::json::json_pointer("/flip/done"), false, "A8->A4 flip"},
                        Case{"grad", nlohmann::json::json_pointer("/max_post_clip_grad_norm_last_100"), 1.01, "post-clip"},
                        Case{"rising", nlohmann::json::json_pointer("/loss_last_200/slope_per_step"), 0.01, "loss stable"},
                        Case{"short", nlohmann::json::json_pointer("/loss_last_200/count"), 150, "loss stable"}}) {
    nlohmann::json h = passing_health();
    h[c.ptr] = c.value;
    EXPECT_NE(run_check(h, &out), 0) << c.what;
    EXPECT_NE(out.find(std::string("[FAIL] ") + c.line), std::string::npos) << c.what << "\n" << out;
    EXPECT_NE(out.find("M3 exit criteria: FAIL"), std::string::npos) << c.what;
  }
  nlohmann::json broken = passing_health();
  broken.erase("flip");
  EXPECT_NE(run_check(broken, &out), 0);
  EXPECT_NE(out.find("lacks a field"), std::string::npos) << out;
}

}  // namespace
}  // namespace bkd

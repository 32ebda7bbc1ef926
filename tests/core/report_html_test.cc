// report.html and the v0 exit criteria, built from report files written the way the stages write them.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/config/run_layout.h"
#include "core/report/html_report.h"
#include "core/kd/kd_manifest.h"
#include "core/stages/exit_criteria.h"
#include "provider_test_settings.h"
#include "test_util.h"

namespace bkd {
namespace {
using json = nlohmann::json;

Settings run_settings(const test::TempDir& dir) {
  Settings s = testing::provider_settings(dir, {{"PRESET", "tiny"}});
  RunLayout(s).ensure_folders();
  return s;
}

void write_json(const std::string& path, const json& j) { write_file_atomic(path, j.dump(2)); }

json passing_health() {
  return {{"seen_tokens", 1200000},
          {"nan_count", 0},
          {"skipped_steps", 0},
          {"flip", {{"done", true}, {"step", 264}, {"fraction", 0.9}}},
          {"max_post_clip_grad_norm_last_100", 1.0},
          {"loss_last_200", {{"mean", 3.0}, {"std", 0.1}, {"slope_per_step", -0.0001}, {"count", 200}}}};
}

void write_all_reports(const Settings& s, double shard_rows, double invalid_rate, double qei) {
  const RunLayout layout(s);
  write_json(layout.teacher_baseline_report(),
             {{"provider", "local"}, {"requests", {{"ok", 4}}}, {"decode_tokens_per_s", {{"p50", 120.5}}}});
  const KdTraceDir kd = layout.kd_traces();
  write_file_atomic(kd.shard(0, 1, 0), "PAR1");
  KdIdentity id;
  id.plan_hash = "p", id.teacher = "local", id.model = "m", id.mode = "score", id.k_requested = id.k = 20;
  json manifest = id.to_json();
  manifest.update({{"complete", true},
                   {"shards", {{{"file", kd.shard_file_name(0, 1, 0)}, {"rows", static_cast<int64_t>(shard_rows)},
                                {"stats", {{"invalid_row_rate", invalid_rate}}}}}}});
  write_json(kd.manifest(), manifest);
  write_json(layout.health("student"), passing_health());
  write_json(layout.eval_report(),
             {{"_meta", {{"ended_at", "2026-01-01T00:00:00Z"}}},
              {"teacher", {{"provider", "local"}, {"quality", {{"bits_per_byte", 1.5}}}, {"decode_tokens_per_s", 120.5},
                           {"memory", {{"bytes", 64e6}}}}},
              {"student", {{"mode", "a4"}, {"quality", {{"bits_per_byte", 1.9}}},
                           {"agreement", {{"top1_agreement", 0.61}, {"kl_teacher_student", 0.42}}},
                           {"decode", {{"trained_mode", {{"decode_tokens_per_s", 900.0}}}}}, {"memory", {{"bytes", 5e6}}}}},
              {"ablation_ce_only", {{"quality", {{"bits_per_byte", 2.1}}}, {"kd_gain_bits_per_byte", 0.2}}},
              {"qei", {{"placeholder", {{"quality", "placeholder <0.75>"}, {"quality_ratio", 0.75}, {"memory_ratio", 0.078},
                                        {"tps_ratio", 7.5}, {"qei", qei}, {"qei_speed", qei * 7.5}}}}}});
  write_json(layout.dryrun_report(),
             {{"success", true}, {"memory", {{"peak_rss_gb", 2.05}}},
              {"checks", {{"a8_codes_in_range", true}, {"a4_codes_in_range", true}, {"all_finite", true}}}});
}

const Criterion* find(const std::vector<Criterion>& cs, const std::string& text) {
  for (const auto& c : cs)
    if (c.criterion.find(text) != std::string::npos) return &c;
  return nullptr;
}

TEST(ExitCriteria, EveryCriterionPassesOnAGoodRunAndNamesItsFigure) {
  test::TempDir dir;
  Settings s = run_settings(dir);
  write_all_reports(s, 600000, 0.011, 9.6);
  const auto cs = v0_criteria(s);
  ASSERT_EQ(cs.size(), 12u);  // M0 1, M1 1, M2 2, M3 5, M4 3 (no measured-quality QEI in this report)
  for (const auto& c : cs) EXPECT_TRUE(c.pass) << c.milestone << " " << c.criterion << ": " << c.figure;
  EXPECT_EQ(find(cs, "500k")->figure, "600000 rows");
  EXPECT_EQ(find(cs, "invalid-row")->figure, "1.10%");
  EXPECT_NE(find(cs, "QEI")->figure.find("QEI 9.600"), std::string::npos);
  EXPECT_NE(criteria_table(cs).find("PASS"), std::string::npos);
}

TEST(ExitCriteria, ThresholdsAreTheSeedsAndMissingFilesNameTheirStage) {
  test::TempDir dir;
  Settings s = run_settings(dir);
  write_all_reports(s, 499999, 0.02, 0.19);
  auto cs = v0_criteria(s);
  EXPECT_FALSE(find(cs, "500k")->pass);
  EXPECT_FALSE(find(cs, "invalid-row")->pass);  // < 2% is strict
  EXPECT_FALSE(find(cs, "QEI")->pass);
  EXPECT_TRUE(find(cs, "folder tree")->pass);

  test::TempDir empty;
  Settings e = run_settings(empty);
  cs = v0_criteria(e);
  EXPECT_TRUE(find(cs, "folder tree")->pass);
  EXPECT_EQ(find(cs, "500k")->figure, "missing: run `bitnet-kde collect`");
  EXPECT_EQ(find(cs, "seen tokens")->figure, "missing: run `bitnet-kde train`");
  EXPECT_EQ(find(cs, "7B")->figure, "missing: run `bitnet-kde dryrun`");
  for (const auto& c : cs)
    if (c.milestone != "M0") EXPECT_FALSE(c.pass) << c.criterion;
}

// The chart's geometry, checked against the mapping the renderer promises: x from the left edge of the
// plot area (60) to its right edge (620), y from the bottom (255) to the top (30), padded by 5%.
TEST(HtmlReport, LineChartMapsPointsIntoThePlotAreaAndEscapesLabels) {
  const std::string svg =
      svg_line_chart("loss <total>", "step", {{"a&b", {{0, 0}, {10, 10}}}}, {{5, "flip <here>"}});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, std::regex("d=\"M([0-9.]+),([0-9.]+) L([0-9.]+),([0-9.]+)\"")));
  const double span = 255 - 30, pad = 10 * 0.05;
  EXPECT_NEAR(std::stod(m[1]), 60, 0.1);
  EXPECT_NEAR(std::stod(m[3]), 620, 0.1);
  EXPECT_NEAR(std::stod(m[2]), 255 - pad / (10 + 2 * pad) * span, 0.1);
  EXPECT_NEAR(std::stod(m[4]), 30 + pad / (10 + 2 * pad) * span, 0.1);
  EXPECT_NE(svg.find("loss &lt;total&gt;"), std::string::npos);
  EXPECT_NE(svg.find("a&amp;b"), std::string::npos);
  EXPECT_NE(svg.find("flip &lt;here&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("<total>"), std::string::npos);
  EXPECT_NE(svg_line_chart("empty", "x", {}, {}).find("no data"), std::string::npos);
}

TEST(HtmlReport, PageHoldsCurvesFlipTablesAndCriteriaAndIsWellFormedSvg) {
  test::TempDir dir;
  Settings s = run_settings(dir);
  write_all_reports(s, 600000, 0.011, 9.6);
  const std::string sdir = RunLayout(s).role_checkpoints("student");
  ensure_dir(sdir);
  std::string lines;
  for (int i = 0; i < 10; ++i)
    lines += json{{"step", i}, {"loss", 5.0 - 0.3 * i}, {"kd", 1.0 - 0.05 * i}, {"ce", 4.0 - 0.2 * i}, {"format", 3.0},
                  {"grad_norm_pre", 2.0}, {"grad_norm_post", 1.0}, {"mode", i < 9 ? "a8" : "a4"}}.dump() + "\n";
  lines += "not json\n";  // a damaged line is skipped, not fatal
  write_file_atomic(RunLayout::metrics_in(sdir), lines);
  const std::vector<Criterion> cs = v0_criteria(s);
  write_json(RunLayout(s).pipeline_report(), {{"criteria", criteria_json(cs)}});

  const std::string path = write_html_report(s);
  const std::string html = read_file(path);
  EXPECT_NE(html.find("A8→A4 flip (step 9)"), std::string::npos);
  EXPECT_NE(html.find("student loss terms"), std::string::npos);
  EXPECT_NE(html.find("gradient norm"), std::string::npos);
  EXPECT_NE(html.find("<td>1.9</td>"), std::string::npos);   // student bits/byte
  EXPECT_NE(html.find("0.610"), std::string::npos);          // top-1 agreement
  EXPECT_NE(html.find("9.6"), std::string::npos);            // QEI
  EXPECT_NE(html.find("600000 rows"), std::string::npos);    // criteria table
  EXPECT_NE(html.find("What KD buys"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("http://"), html.find("http://www.w3.org/2000/svg"));  // no external resources

  // Every inline SVG parses as XML with an independent parser.
  const std::string svgs = dir.file("svgs");
  ensure_dir(svgs);
  int n = 0;
  for (size_t at = html.find("<svg"); at != std::string::npos; at = html.find("<svg", at + 1)) {
    const size_t end = html.find("</svg>", at);
    ASSERT_NE(end, std::string::npos);
    write_file_atomic(svgs + "/" + std::to_string(n++) + ".svg", html.substr(at, end + 6 - at));
  }
  EXPECT_GE(n, 2);
  const auto r = test::run_command("python3 -c \"import glob,xml.etree.ElementTree as E; [E.parse(f) for f in glob.glob('" + svgs +
                                   "/*.svg')]; print('ok')\"");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

TEST(HtmlReport, MissingInputsSayWhichStageMakesThem) {
  test::TempDir dir;
  Settings s = run_settings(dir);
  const std::string html = read_file(write_html_report(s));
  EXPECT_NE(html.find("run <code>bitnet-kde eval</code>"), std::string::npos);
  EXPECT_NE(html.find("run <code>bitnet-kde train</code>"), std::string::npos);
  EXPECT_NE(html.find("run <code>bitnet-kde pipeline</code>"), std::string::npos);
}

}  // namespace
}  // namespace bkd

// `bitnet-kde inspect`: the CLI's numbers against compute_kd_stats and a hand count, and a clear error
// for a file that is not a shard.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/kd/kd_accounting.h"
#include "core/kd/kd_shard.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "parquet_test_util.h"

using namespace bkd;

namespace {
int run(const std::string& cmd, std::string* out) {
  std::string file = test::scratch_dir("inspect_run") + "/out.txt";
  int rc = std::system((cmd + " >'" + file + "' 2>&1").c_str());
  *out = read_file(file);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}
}  // namespace

TEST(KdInspect, JsonMatchesTheShard) {
  std::string dir = test::scratch_dir("inspect");
  std::string path = dir + "/shard.parquet";
  KdShardMeta meta;
  meta.teacher = "local", meta.model = "m1", meta.k = 3, meta.temperature = 1.0;
  KdWriterOptions opt;
  opt.row_group_rows = 4;
  KdShardWriter w(path, meta, opt);
  // 3 sequences, 10 rows, 2 invalid (empty lists), K = 3 for valid rows except one with K = 2.
  for (int i = 0; i < 10; ++i) {
    bool valid = i != 2 && i != 7;
    size_t k = !valid ? 0 : i == 5 ? 2 : 3;
    int32_t ids[3] = {1, 2, 3};
    float lps[3] = {std::log(0.5f), std::log(0.25f), std::log(0.125f)};
    w.append(i / 4, i % 4, 7, valid, ids, lps, k, std::log(0.125f));
  }
  w.close();
  std::string out;
  ASSERT_EQ(run(std::string(BKD_CLI_PATH) + " inspect --json '" + path + "'", &out), 0) << out;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["rows"], 10);
  EXPECT_EQ(j["sequences"], 3);
  EXPECT_EQ(j["row_groups"], 3);
  EXPECT_EQ(j["valid_rows"], 8);
  EXPECT_EQ(j["rows_without_kd"], 2);
  EXPECT_NEAR(j["no_kd_rate"].get<double>(), 0.2, 1e-12);
  // Written without collect's row accounting: why those rows lack KD is unknown, and said so.
  EXPECT_EQ(j["row_accounting"]["source"], "not recorded");
  EXPECT_TRUE(j["invalid_row_rate"].is_null());
  EXPECT_NEAR(j["mean_other_mass"].get<double>(), 0.125, 1e-6);
  EXPECT_NEAR(j["mean_topk_coverage"].get<double>(), (7 * 0.875 + 0.75) / 8, 1e-6);
  EXPECT_EQ(j["k_histogram"]["0"], 2);
  EXPECT_EQ(j["k_histogram"]["2"], 1);
  EXPECT_EQ(j["k_histogram"]["3"], 7);
  EXPECT_EQ(j["metadata"]["bkd.model"], "m1");
  EXPECT_EQ(j["schema"][4]["type"], "list<INT32>");
  ASSERT_EQ(run(std::string(BKD_CLI_PATH) + " inspect '" + path + "'", &out), 0) << out;
  EXPECT_NE(out.find("K histogram"), std::string::npos) << out;
  EXPECT_NE(out.find("sequences:           3"), std::string::npos) << out;
}

TEST(KdInspect, NotAShardIsAClearError) {
  std::string dir = test::scratch_dir("inspect_bad");
  write_file_atomic(dir + "/junk.parquet", "this is not parquet at all");
  std::string out;
  EXPECT_EQ(run(std::string(BKD_CLI_PATH) + " inspect '" + dir + "/junk.parquet'", &out), 1) << out;
  EXPECT_NE(out.find("junk.parquet"), std::string::npos) << out;
  EXPECT_NE(out.find("magic"), std::string::npos) << out;
}

namespace {
// 12 rows: 2 outside the range, 3 without a teacher boundary, 1 without log-probs, 6 with KD.
std::string write_accounted_shard(const std::string& dir, KdRowCounts counts) {
  std::string path = dir + "/acc.parquet";
  KdShardMeta meta;
  meta.teacher = "local", meta.model = "m1", meta.k = 2;
  KdShardWriter w(path, meta);
  int32_t ids[2] = {4, 5};
  float lps[2] = {std::log(0.5f), std::log(0.25f)};
  for (int i = 0; i < 12; ++i) {
    bool valid = i >= 6;
    w.append(0, i, 9, valid, ids, lps, valid ? 2 : 0, valid ? std::log(0.25f) : 0.0f);
  }
  for (const auto& kv : counts.to_key_values()) w.set_metadata(kv.key, kv.value);
  w.close();
  return path;
}
KdRowCounts twelve() {
  KdRowCounts c;
  c.rows = 12, c.kd = 6, c.outside_range = 2, c.no_teacher_boundary = 3, c.no_logprobs = 1;
  return c;
}
}  // namespace

TEST(KdInspect, ReportsTheRowAccountingCollectStored) {
  std::string dir = test::scratch_dir("inspect_acc");
  std::string path = write_accounted_shard(dir, twelve());
  std::string out;
  ASSERT_EQ(run(std::string(BKD_CLI_PATH) + " inspect --json '" + path + "'", &out), 0) << out;
  auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["row_accounting"]["source"], "shard metadata");
  EXPECT_EQ(j["rows_without_kd"], 6);
  EXPECT_EQ(j["row_accounting"]["rows_in_range"], 10);
  EXPECT_EQ(j["row_accounting"]["rows_invalid"], 1);
  // One denominator (rows in range): 6 KD + 3 without a teacher boundary + 1 invalid = 10.
  EXPECT_NEAR(j["invalid_row_rate"].get<double>(), 0.1, 1e-12);
  EXPECT_NEAR(j["no_teacher_boundary_rate"].get<double>(), 0.3, 1e-12);
  EXPECT_NEAR(j["kd_fraction"].get<double>(), 0.6, 1e-12);
  ASSERT_EQ(run(std::string(BKD_CLI_PATH) + " inspect '" + path + "'", &out), 0) << out;
  EXPECT_NE(out.find("no teacher token:  3"), std::string::npos) << out;
  EXPECT_NE(out.find("invalid-row rate 10.0000%"), std::string::npos) << out;
}

TEST(KdInspect, AccountingThatDisagreesWithTheRowsIsAnError) {
  std::string dir = test::scratch_dir("inspect_acc_bad");
  KdRowCounts c = twelve();
  c.kd = 5, c.no_logprobs = 2;  // adds up to 12, but the shard has 6 kd_valid rows
  std::string out;
  EXPECT_EQ(run(std::string(BKD_CLI_PATH) + " inspect '" + write_accounted_shard(dir, c) + "'", &out), 1) << out;
  EXPECT_NE(out.find("row accounting"), std::string::npos) << out;
  c = twelve();
  c.misaligned = 1;  // the classes no longer add up to the rows
  EXPECT_EQ(run(std::string(BKD_CLI_PATH) + " inspect '" + write_accounted_shard(dir, c) + "'", &out), 1) << out;
  EXPECT_NE(out.find("inconsistent"), std::string::npos) << out;
}

TEST(KdRowCounts, MetadataRoundTripAndErrors) {
  KdRowCounts c = twelve();
  auto back = KdRowCounts::from_key_values(c.to_key_values(), "x");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->to_json(), c.to_json());
  EXPECT_FALSE(KdRowCounts::from_key_values({{"bkd.model", "m"}}, "x").has_value());
  auto kv = c.to_key_values();
  kv.pop_back();
  EXPECT_THROW(KdRowCounts::from_key_values(kv, "x"), Error);  // incomplete
  kv = c.to_key_values();
  kv[1].value = "6x";
  EXPECT_THROW(KdRowCounts::from_key_values(kv, "x"), Error);  // not an integer
  EXPECT_NEAR(c.kd_fraction() + c.no_teacher_boundary_rate() + c.invalid_row_rate(), 1.0, 1e-12);
}

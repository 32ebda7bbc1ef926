// `bitnet-kde inspect`: the CLI's numbers against compute_kd_stats and a hand count, and a clear error
// for a file that is not a shard.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "core/kd/kd_shard.h"
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
  EXPECT_NEAR(j["invalid_rate"].get<double>(), 0.2, 1e-12);
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

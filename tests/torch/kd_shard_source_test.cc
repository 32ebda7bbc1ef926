#include "torch/train/kd_shard_source.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/kd/kd_shard.h"
#include "core/util/error.h"

namespace bkd {
namespace {

TEST(TorchKdShards, RowsBecomeOverlappingWindowsAlignedForTraining) {
  const std::string dir = (std::filesystem::temp_directory_path() / ("bkd_kdsrc_" + std::to_string(::getpid()))).string();
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/kd_shard_000.parquet";
  {
    KdShardMeta meta;
    meta.teacher = "local", meta.model = "test", meta.k = 2;
    KdShardWriter w(path, meta);
    // sequence 7: 8 positions written out of order; sequence 9: 2 positions
    for (int32_t pos : {3, 0, 1, 2, 4, 5, 6, 7}) {
      int32_t ids[2] = {pos + 1, pos + 2};
      float lp[2] = {-0.1f, -3.0f};
      w.append(7, pos, 100 + pos, pos != 5, ids, lp, pos == 6 ? 1 : 2, -2.5f);
    }
    for (int32_t pos : {0, 1}) {
      int32_t ids[1] = {3};
      float lp[1] = {-0.5f};
      w.append(9, pos, 200 + pos, true, ids, lp, 1, -1.0f);
    }
    w.close();
  }
  int64_t k = 0;
  auto seqs = read_kd_sequences({path}, 3, &k);
  EXPECT_EQ(k, 2);
  // seq 7 (8 rows, T = 3): windows [0..3], [3..6], [6..7]; seq 9: [0..1]
  ASSERT_EQ(seqs.size(), 4u);
  std::vector<std::vector<int32_t>> want = {{100, 101, 102, 103}, {103, 104, 105, 106}, {106, 107}, {200, 201}};
  for (size_t i = 0; i < want.size(); ++i) {
    std::vector<int32_t> got;
    for (const auto& p : seqs[i]) got.push_back(p.token);
    EXPECT_EQ(got, want[i]) << i;
  }
  EXPECT_FALSE(seqs[1][2].valid);  // pos 5
  EXPECT_EQ(seqs[2][0].ids.size(), 1u);  // pos 6 had one candidate
  auto src = kd_shard_source({path}, 3, 4, 1);
  Batch b = src->next();
  EXPECT_TRUE(b.kd.defined());
  EXPECT_EQ(b.kd.ids.size(2), 2);
  // every position after the first of a window is a target exactly once: 7 + 1 targets in all
  EXPECT_EQ(b.loss_mask.sum().item<int64_t>(), 3 + 3 + 1 + 1);

  {  // a gap is reported with the shard and the sequence
    KdShardMeta meta;
    meta.k = 1;
    KdShardWriter w(dir + "/bad.parquet", meta);
    int32_t ids[1] = {1};
    float lp[1] = {-0.1f};
    for (int32_t pos : {0, 1, 3}) w.append(4, pos, 1, true, ids, lp, 1, -3.0f);
    w.close();
  }
  try {
    read_kd_sequences({dir + "/bad.parquet"}, 8);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sequence 4"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace bkd

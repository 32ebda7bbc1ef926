// KD shards: our writer/reader round trip, DuckDB reading our shards exactly, and our reader reading
// shards DuckDB wrote (zstd, snappy, uncompressed; several row-group sizes; Parquet v1 and v2 pages).
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <limits>
#include <random>

#include "core/kd/kd_shard.h"
#include "core/util/error.h"
#include "parquet_test_util.h"

using namespace bkd;

namespace {

std::vector<KdRow> make_kd_rows(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  const float fx[] = {std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY, -0.0f, 0.0f, -FLT_MAX, FLT_MIN,
                      -1e-45f};
  std::vector<KdRow> rows;
  int64_t seq = 1000;
  int32_t pos = 0;
  for (size_t i = 0; i < n; ++i) {
    if (rng() % 50 == 0) ++seq, pos = 0;
    KdRow r;
    r.seq_id = i == 7 ? INT64_MIN : i == 8 ? INT64_MAX : seq;
    r.pos = i == 9 ? INT32_MIN : i == 10 ? INT32_MAX : pos++;
    r.token_id = static_cast<int32_t>(rng() % 50257);
    r.kd_valid = rng() % 10 != 0;
    size_t k = r.kd_valid ? (rng() % 4 == 0 ? rng() % 25 : 20) : 0;  // empty lists on invalid rows, K varies
    float lp = 0;
    for (size_t j = 0; j < k; ++j) {
      r.topk_ids.push_back(i % 113 == 0 && j == 0 ? INT32_MIN : i % 127 == 0 && j == 1 ? INT32_MAX
                                                                                    : static_cast<int32_t>(rng() % 50257));
      lp -= static_cast<float>(rng() % 1000) / 300.0f;
      r.topk_logprobs.push_back(i % 41 == 0 && j == 2 ? fx[(i / 41) % 8] : lp);
    }
    r.other_logprob = i % 43 == 0 ? fx[(i / 43) % 8] : lp - 1.5f;
    rows.push_back(std::move(r));
  }
  return rows;
}

KdShardMeta test_meta() {
  KdShardMeta m;
  m.teacher = "local";
  m.model = "gpt2-test";
  m.k = 20;
  m.temperature = 0.7;
  m.student_tokenizer_hash = "abc123";
  m.teacher_tokenizer_hash = "def456";
  m.created_at = "2026-11-26T00:00:00Z";
  m.extra["corpus"] = "sotu";
  return m;
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, 4) == 0; }

void expect_rows_equal(const std::vector<KdRow>& want, const std::string& path) {
  KdShardReader rd(path);
  ASSERT_EQ(rd.num_rows(), static_cast<int64_t>(want.size()));
  KdBatch b;
  size_t i = 0;
  while (rd.next(b)) {
    for (size_t r = 0; r < b.rows(); ++r, ++i) {
      ASSERT_LT(i, want.size());
      KdRow got = b.row(r);
      const KdRow& w = want[i];
      ASSERT_EQ(got.seq_id, w.seq_id) << i;
      ASSERT_EQ(got.pos, w.pos) << i;
      ASSERT_EQ(got.token_id, w.token_id) << i;
      ASSERT_EQ(got.kd_valid, w.kd_valid) << i;
      ASSERT_EQ(got.topk_ids, w.topk_ids) << i;
      ASSERT_EQ(got.topk_logprobs.size(), w.topk_logprobs.size()) << i;
      for (size_t j = 0; j < w.topk_logprobs.size(); ++j)
        ASSERT_TRUE(same_bits(got.topk_logprobs[j], w.topk_logprobs[j])) << i << " " << j;
      ASSERT_TRUE(same_bits(got.other_logprob, w.other_logprob)) << i;
    }
  }
  EXPECT_EQ(i, want.size());
}

void write_shard(const std::string& path, const std::vector<KdRow>& rows, KdWriterOptions opt) {
  KdShardWriter w(path, test_meta(), opt);
  for (const auto& r : rows) w.append(r);
  w.close();
}

}  // namespace

TEST(KdShard, RoundTripWithMetadata) {
  std::string dir = test::scratch_dir("kd_rt");
  auto rows = make_kd_rows(3000, 1);
  for (bool bss : {false, true}) {
    KdWriterOptions opt;
    opt.row_group_rows = 1111;
    opt.byte_stream_split = bss;
    write_shard(dir + "/a.parquet", rows, opt);
    expect_rows_equal(rows, dir + "/a.parquet");
  }
  KdShardReader rd(dir + "/a.parquet");
  EXPECT_EQ(rd.parquet().num_row_groups(), 3);
  const KdShardMeta& m = rd.meta();
  EXPECT_EQ(m.teacher, "local");
  EXPECT_EQ(m.model, "gpt2-test");
  EXPECT_EQ(m.k, 20);
  EXPECT_DOUBLE_EQ(m.temperature, 0.7);
  EXPECT_EQ(m.student_tokenizer_hash, "abc123");
  EXPECT_EQ(m.teacher_tokenizer_hash, "def456");
  EXPECT_EQ(m.created_at, "2026-11-26T00:00:00Z");
  EXPECT_EQ(m.schema_version, kKdSchemaVersion);
  EXPECT_EQ(m.extra.at("corpus"), "sotu");
}

TEST(KdShard, EmptyShardAndMismatchedListsAreHandled) {
  std::string dir = test::scratch_dir("kd_empty");
  write_shard(dir + "/e.parquet", {}, {});
  KdShardReader rd(dir + "/e.parquet");
  EXPECT_EQ(rd.num_rows(), 0);
  KdBatch b;
  EXPECT_FALSE(rd.next(b));
  KdShardWriter w(dir + "/m.parquet", test_meta());
  KdRow r;
  r.topk_ids = {1, 2};
  r.topk_logprobs = {-1.0f};
  EXPECT_THROW(w.append(r), Error);
}

TEST(KdShard, StatsMatchADirectComputation) {
  std::string dir = test::scratch_dir("kd_stats");
  auto rows = make_kd_rows(2000, 3);
  for (auto& r : rows) {  // finite values only, so the reference sums are well defined
    for (auto& x : r.topk_logprobs) x = std::isfinite(x) ? x : -3.0f;
    if (!std::isfinite(r.other_logprob)) r.other_logprob = -2.0f;
  }
  write_shard(dir + "/s.parquet", rows, {});
  KdShardReader rd(dir + "/s.parquet");
  KdShardStats s = compute_kd_stats(rd);
  std::set<int64_t> seqs;
  int64_t valid = 0;
  double other = 0, cov = 0;
  std::map<int64_t, int64_t> hist;
  for (const auto& r : rows) {
    seqs.insert(r.seq_id);
    ++hist[static_cast<int64_t>(r.topk_ids.size())];
    if (!r.kd_valid) continue;
    ++valid;
    other += std::exp(static_cast<double>(r.other_logprob));
    double m = 0;
    for (float x : r.topk_logprobs) m += std::exp(static_cast<double>(x));
    cov += m;
  }
  EXPECT_EQ(s.rows, 2000);
  EXPECT_EQ(s.sequences, static_cast<int64_t>(seqs.size()));
  EXPECT_EQ(s.valid_rows, valid);
  EXPECT_NEAR(s.invalid_rate, 1.0 - valid / 2000.0, 1e-12);
  EXPECT_NEAR(s.mean_other_mass, other / valid, 1e-9);
  EXPECT_NEAR(s.mean_topk_coverage, cov / valid, 1e-9);
  EXPECT_EQ(s.k_histogram, hist);
  EXPECT_EQ(s.min_pos, INT32_MIN);
  EXPECT_EQ(s.max_pos, INT32_MAX);
}

TEST(KdShard, ReaderRejectsOtherSchemas) {
  std::string dir = test::scratch_dir("kd_schema");
  parquet::ParquetWriter w(dir + "/x.parquet", {{"seq_id", parquet::Type::INT32}});
  w.close();
  try {
    KdShardReader rd(dir + "/x.parquet");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("seq_id"), std::string::npos) << e.what();
  }
}

namespace {
// One JSON row from duckdb_run.js against a KD row.
void expect_duck_row(const nlohmann::json& j, const KdRow& w, size_t i) {
  ASSERT_TRUE(test::same_int(w.seq_id, j[0])) << i << j.dump();
  ASSERT_TRUE(test::same_int(w.pos, j[1])) << i << j.dump();
  ASSERT_TRUE(test::same_int(w.token_id, j[2])) << i;
  ASSERT_EQ(j[3], w.kd_valid ? "true" : "false") << i;
  ASSERT_EQ(j[4].size(), w.topk_ids.size()) << i;
  ASSERT_EQ(j[5].size(), w.topk_logprobs.size()) << i;
  for (size_t k = 0; k < w.topk_ids.size(); ++k) {
    ASSERT_TRUE(test::same_int(w.topk_ids[k], j[4][k])) << i;
    ASSERT_TRUE(test::same_f32(w.topk_logprobs[k], j[5][k])) << i << " " << j[5][k];
  }
  ASSERT_TRUE(test::same_f32(w.other_logprob, j[6])) << i << " " << j[6];
}
const char* kSelect = "SELECT seq_id, pos, token_id, kd_valid, topk_ids, topk_logprobs, other_logprob FROM ";
}  // namespace

TEST(KdShard, DuckDbReadsOurShardsExactly) {
  BKD_REQUIRE_DUCKDB();
  std::string dir = test::scratch_dir("kd_duck_read");
  auto rows = make_kd_rows(2500, 9);
  for (int variant = 0; variant < 3; ++variant) {
    bool bss = variant == 1;
    KdWriterOptions opt;
    opt.row_group_rows = 800;
    opt.byte_stream_split = bss;
    opt.codec = variant == 0 ? parquet::Codec::ZSTD : variant == 1 ? parquet::Codec::UNCOMPRESSED : parquet::Codec::SNAPPY;
    std::string path = dir + "/ours.parquet";
    write_shard(path, rows, opt);
    auto got = test::duckdb_rows({std::string(kSelect) + "read_parquet('" + path + "')"}, dir);
    ASSERT_EQ(got.size(), rows.size());
    for (size_t i = 0; i < rows.size(); ++i) expect_duck_row(got[i], rows[i], i);
    auto meta = test::duckdb_rows({"SELECT value::VARCHAR FROM parquet_kv_metadata('" + path +
                                   "') WHERE key::VARCHAR = 'bkd.model'"},
                                  dir);
    ASSERT_EQ(meta.size(), 1u);
    EXPECT_EQ(meta[0][0], "gpt2-test");
  }
}

TEST(KdShard, WeReadDuckDbWrittenShardsExactly) {
  BKD_REQUIRE_DUCKDB();
  std::string dir = test::scratch_dir("kd_duck_write");
  auto rows = make_kd_rows(3000, 13);
  std::string ours = dir + "/ours.parquet";
  KdWriterOptions opt;
  opt.codec = parquet::Codec::UNCOMPRESSED;
  write_shard(ours, rows, opt);
  struct Case {
    const char* options;
  } cases[] = {
      {"COMPRESSION zstd"},
      {"COMPRESSION zstd, ROW_GROUP_SIZE 500"},
      {"COMPRESSION uncompressed, ROW_GROUP_SIZE 1000"},
      {"COMPRESSION zstd, PARQUET_VERSION V2, ROW_GROUP_SIZE 700"},
      {"COMPRESSION uncompressed, PARQUET_VERSION V2"},
      {"COMPRESSION snappy, ROW_GROUP_SIZE 2048"},
      {"ROW_GROUP_SIZE 100000"},  // DuckDB's defaults (snappy)
      {"COMPRESSION snappy, PARQUET_VERSION V2, ROW_GROUP_SIZE 999"},
  };
  for (const auto& c : cases) {
    std::string theirs = dir + "/duck.parquet";
    test::duckdb_rows({"COPY (" + std::string(kSelect) + "read_parquet('" + ours + "')) TO '" + theirs +
                       "' (FORMAT parquet, " + c.options + ")"},
                      dir);
    SCOPED_TRACE(c.options);
    expect_rows_equal(rows, theirs);
  }
}

TEST(KdShard, WeReadSqlGeneratedDuckDbShard) {
  BKD_REQUIRE_DUCKDB();
  // Values computed independently by DuckDB's SQL and by the C++ below.
  std::string dir = test::scratch_dir("kd_duck_sql");
  std::string path = dir + "/gen.parquet";
  test::duckdb_rows({"COPY (SELECT (i // 10)::BIGINT AS seq_id, (i % 10)::INTEGER AS pos, (i * 7 % 50000)::INTEGER AS "
                     "token_id, (i % 9 <> 0) AS kd_valid, "
                     "CASE WHEN i % 9 = 0 THEN []::INTEGER[] ELSE list_transform(range(i % 6), x -> (x * 1000 + i)::INTEGER) END AS topk_ids, "
                     "CASE WHEN i % 9 = 0 THEN []::FLOAT[] ELSE list_transform(range(i % 6), x -> (x * -0.25 - 0.125)::FLOAT) END AS topk_logprobs, "
                     "(-i / 8.0)::FLOAT AS other_logprob FROM range(5000) t(i)) TO '" +
                     path + "' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 2048)"},
                    dir);
  std::vector<KdRow> want;
  for (int64_t i = 0; i < 5000; ++i) {
    KdRow r;
    r.seq_id = i / 10, r.pos = static_cast<int32_t>(i % 10), r.token_id = static_cast<int32_t>(i * 7 % 50000);
    r.kd_valid = i % 9 != 0;
    if (r.kd_valid)
      for (int64_t x = 0; x < i % 6; ++x) {
        r.topk_ids.push_back(static_cast<int32_t>(x * 1000 + i));
        r.topk_logprobs.push_back(static_cast<float>(x * -0.25 - 0.125));
      }
    r.other_logprob = static_cast<float>(-i / 8.0);
    want.push_back(r);
  }
  expect_rows_equal(want, path);
}

TEST(KdShard, DuckDbSeesOurStatistics) {
  BKD_REQUIRE_DUCKDB();
  std::string dir = test::scratch_dir("kd_duck_stats");
  std::vector<KdRow> rows;
  for (int i = 0; i < 100; ++i) {
    KdRow r;
    r.seq_id = 5 + i / 10, r.pos = i % 10, r.token_id = 100 + i, r.kd_valid = i % 4 != 0;
    if (r.kd_valid) r.topk_ids = {i, -i}, r.topk_logprobs = {-0.25f * i, i == 50 ? std::nanf("") : -1.0f};
    r.other_logprob = i == 3 ? 0.0f : -2.0f - i;
    rows.push_back(r);
  }
  std::string path = dir + "/s.parquet";
  write_shard(path, rows, {});
  auto got = test::duckdb_rows({"SELECT path_in_schema, stats_min_value, stats_max_value, stats_null_count FROM "
                                "parquet_metadata('" + path + "') ORDER BY column_id"},
                               dir);
  ASSERT_EQ(got.size(), 7u);
  auto expect = [&](size_t c, const char* mn, const char* mx, const char* nulls) {
    EXPECT_EQ(got[c][1], mn) << got[c].dump();
    EXPECT_EQ(got[c][2], mx) << got[c].dump();
    EXPECT_EQ(got[c][3], nulls) << got[c].dump();
  };
  expect(0, "5", "14", "0");
  expect(1, "0", "9", "0");
  expect(2, "100", "199", "0");
  expect(3, "false", "true", "0");
  expect(4, "-99", "99", "25");     // 25 empty lists count as nulls at the element level
  expect(5, "-24.75", "-0.25", "25");  // the NaN is left out of min/max
  expect(6, "-101.0", "0.0", "0");  // a zero max is written as +0.0
}

#include "core/config/settings.h"

TEST(KdShard, WriterOptionsFromSettings) {
  LoadOptions o;
  o.use_process_env = false;
  o.env_file = test::scratch_dir("kd_settings") + "/empty.env";
  write_file_atomic(o.env_file, "");
  o.overrides["PARQUET_COMPRESSION"] = "snappy";
  o.overrides["PARQUET_ROW_GROUP_ROWS"] = "1234";
  KdWriterOptions w = KdWriterOptions::from_settings(Settings::load(o));
  EXPECT_EQ(w.codec, parquet::Codec::SNAPPY);
  EXPECT_EQ(w.row_group_rows, 1234);
  o.overrides.erase("PARQUET_COMPRESSION"), o.overrides.erase("PARQUET_ROW_GROUP_ROWS");
  KdWriterOptions d = KdWriterOptions::from_settings(Settings::load(o));
  EXPECT_EQ(d.codec, parquet::Codec::ZSTD);
  EXPECT_EQ(d.row_group_rows, 65536);
}

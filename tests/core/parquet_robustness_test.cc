// Damaged files: every truncation and >= 10k random byte flips of small shards must end in a bkd::Error
// naming the file, or in a successful read — never a crash, a hang or another exception type.
// (Run under -fsanitize=address to also catch reads out of bounds; the fuzz target does the same.)
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <random>

#include "core/kd/kd_shard.h"
#include "core/parquet/reader.h"
#include "core/util/error.h"
#include "parquet_test_util.h"

using namespace bkd;

namespace {

std::string small_shard(const std::string& dir, bool bss, parquet::Codec codec) {
  std::mt19937 rng(21);
  KdShardMeta meta;
  meta.teacher = "t", meta.model = "m", meta.k = 4;
  KdWriterOptions opt;
  opt.row_group_rows = 16;
  opt.byte_stream_split = bss;
  opt.codec = codec;
  std::string path = dir + "/small.parquet";
  KdShardWriter w(path, meta, opt);
  for (int i = 0; i < 40; ++i) {
    int32_t ids[4];
    float lps[4];
    size_t k = i % 7 == 0 ? 0 : 4;
    for (size_t j = 0; j < k; ++j) ids[j] = static_cast<int32_t>(rng() % 20), lps[j] = -0.5f * (j + 1);
    w.append(i / 10, i % 10, static_cast<int32_t>(rng() % 20), k != 0, ids, lps, k, -3.0f);
  }
  w.close();
  return read_file(path);
}

// Parses and decodes everything; returns "ok" or the error text. Anything but bkd::Error fails the test.
std::string try_read(const std::string& bytes, const char* name) {
  std::unique_ptr<uint8_t[]> copy(new uint8_t[bytes.size() ? bytes.size() : 1]);  // exact size: ASan sees overreads
  std::memcpy(copy.get(), bytes.data(), bytes.size());
  parquet::ReaderLimits limits;
  limits.max_page_bytes = 1 << 20, limits.max_values_per_page = 1 << 20, limits.max_values_per_chunk = 1 << 22;
  try {
    parquet::ParquetReader r(copy.get(), bytes.size(), name, limits);
    parquet::RowGroupData g;
    for (int i = 0; i < r.num_row_groups(); ++i) r.read_row_group(i, g);
    return "ok";
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "non-bkd exception " << typeid(e).name() << ": " << e.what();
    return e.what();
  }
}

}  // namespace

TEST(ParquetRobustness, EveryTruncationIsAnErrorNamingTheFile) {
  std::string dir = test::scratch_dir("robust_trunc");
  for (bool bss : {false, true}) {
    std::string bytes = small_shard(dir, bss, bss ? parquet::Codec::UNCOMPRESSED : parquet::Codec::ZSTD);
    ASSERT_EQ(try_read(bytes, "whole.parquet"), "ok");
    for (size_t n = 0; n < bytes.size(); ++n) {
      std::string msg = try_read(bytes.substr(0, n), "cut.parquet");
      ASSERT_NE(msg, "ok") << "truncated to " << n << " bytes and still read";
      ASSERT_NE(msg.find("cut.parquet"), std::string::npos) << msg;
    }
  }
}

TEST(ParquetRobustness, RandomByteFlipsNeverCrashOrHang) {
  std::string dir = test::scratch_dir("robust_flip");
  std::mt19937 rng(1234);
  int errors = 0, reads = 0;
  auto t0 = std::chrono::steady_clock::now();
  for (bool bss : {false, true}) {
    std::string bytes = small_shard(dir, bss, bss ? parquet::Codec::UNCOMPRESSED : parquet::Codec::ZSTD);
    for (int trial = 0; trial < 6000; ++trial) {
      std::string m = bytes;
      int flips = 1 + static_cast<int>(rng() % 3);
      for (int f = 0; f < flips; ++f) {
        size_t at = rng() % m.size();
        // Bias towards the footer and page headers, where the structure lives.
        if (rng() % 2) at = m.size() - 1 - rng() % std::min<size_t>(m.size(), 400);
        m[at] = static_cast<char>(rng() % 3 == 0 ? rng() : m[at] ^ (1 << (rng() % 8)));
      }
      std::string msg = try_read(m, "flip.parquet");
      if (msg == "ok") ++reads;
      else {
        ++errors;
        ASSERT_NE(msg.find("flip.parquet"), std::string::npos) << msg;
      }
    }
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GT(errors, 1000);
  EXPECT_GT(reads, 100);  // flips inside values read fine
  EXPECT_LT(secs, 60.0) << "too slow: something spins";
  std::printf("byte flips: %d errors, %d successful reads, %.2f s\n", errors, reads, secs);
}

TEST(ParquetRobustness, ErrorsSayWhatIsWrong) {
  std::string dir = test::scratch_dir("robust_msgs");
  std::string bytes = small_shard(dir, false, parquet::Codec::ZSTD);
  EXPECT_NE(try_read("PAR1", "x.parquet").find("too small"), std::string::npos);
  std::string bad_magic = bytes;
  bad_magic[0] = 'X';
  EXPECT_NE(try_read(bad_magic, "x.parquet").find("magic"), std::string::npos);
  std::string bad_len = bytes;
  bad_len[bytes.size() - 5] = 0x7f;  // footer length far larger than the file
  EXPECT_NE(try_read(bad_len, "x.parquet").find("footer length"), std::string::npos);
  // A missing file names the path.
  try {
    parquet::ParquetReader r(dir + "/nope.parquet");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.parquet"), std::string::npos);
  }
}

TEST(ParquetRobustness, DuckDbWrittenFilesSurviveTruncationAndFlips) {
  // DuckDB-written seeds (DATA_PAGE_V2, DELTA_BINARY_PACKED, BYTE_STREAM_SPLIT, RLE_DICTIONARY, snappy, zstd).
  std::mt19937 rng(99);
  for (const char* name : {"duckdb_v2_zstd.parquet", "duckdb_v1_snappy.parquet"}) {
    std::string bytes = read_file(std::string(BKD_SOURCE_DIR) + "/fuzz/corpus/" + name);
    ASSERT_EQ(try_read(bytes, "duck.parquet"), "ok") << name;
    for (size_t n = 0; n < bytes.size(); ++n) ASSERT_NE(try_read(bytes.substr(0, n), "duck.parquet"), "ok") << n;
    for (int trial = 0; trial < 3000; ++trial) {
      std::string m = bytes;
      size_t at = rng() % m.size();
      m[at] = static_cast<char>(m[at] ^ (1 << (rng() % 8)));
      std::string msg = try_read(m, "duck.parquet");
      if (msg != "ok") ASSERT_NE(msg.find("duck.parquet"), std::string::npos) << msg;
    }
  }
}

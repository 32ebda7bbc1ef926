// Flat columns: our writer -> our reader, and our writer -> DuckDB, exact to the bit.
#include <gtest/gtest.h>

#include <cfloat>
#include <limits>
#include <random>

#include "core/parquet/reader.h"
#include "core/parquet/writer.h"
#include "core/util/error.h"
#include "parquet_test_util.h"

using namespace bkd::parquet;

namespace {

struct FlatRows {
  std::vector<int64_t> a;
  std::vector<int32_t> b;
  std::vector<uint8_t> c;
  std::vector<float> d;
  std::vector<double> e;
  std::vector<int32_t> f;  // nullable: INT32_MIN stands for null here
};

std::vector<ColumnSpec> flat_columns() {
  return {{"a", Type::INT64}, {"b", Type::INT32}, {"c", Type::BOOLEAN}, {"d", Type::FLOAT}, {"e", Type::DOUBLE},
          {"f", Type::INT32, false, true}};
}

FlatRows make_rows(size_t n, uint32_t seed) {
  std::mt19937_64 rng(seed);
  FlatRows r;
  const float fx[] = {std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY, -0.0f, 0.0f, FLT_MAX, -FLT_MAX,
                      FLT_MIN, 1e-45f};
  const int32_t ix[] = {INT32_MIN + 1, INT32_MAX, 0, -1};
  for (size_t i = 0; i < n; ++i) {
    r.a.push_back(i % 97 == 0 ? (i % 2 ? INT64_MIN : INT64_MAX) : static_cast<int64_t>(rng()));
    r.b.push_back(i % 89 == 0 ? ix[i % 4] : static_cast<int32_t>(rng() % 1000) - 500);  // dictionary-friendly
    r.c.push_back(rng() % 3 == 0);
    r.d.push_back(i % 31 == 0 ? fx[(i / 31) % 9] : static_cast<float>(static_cast<int64_t>(rng() % 2000000) - 1000000) / 977.0f);
    r.e.push_back(i % 37 == 0 ? -0.0 : static_cast<double>(rng()) / 3.0);
    r.f.push_back(rng() % 5 == 0 ? INT32_MIN : static_cast<int32_t>(rng()));
  }
  return r;
}

void write_rows(const std::string& path, const FlatRows& r, WriterOptions opt) {
  ParquetWriter w(path, flat_columns(), opt);
  for (size_t i = 0; i < r.a.size(); ++i) {
    w.put_i64(0, r.a[i]);
    w.put_i32(1, r.b[i]);
    w.put_bool(2, r.c[i]);
    w.put_f32(3, r.d[i]);
    w.put_f64(4, r.e[i]);
    if (r.f[i] == INT32_MIN) w.put_null(5);
    else w.put_i32(5, r.f[i]);
    w.end_row();
  }
  w.close();
}

bool bits_equal(float x, float y) { return std::memcmp(&x, &y, 4) == 0; }
bool bits_equal(double x, double y) { return std::memcmp(&x, &y, 8) == 0; }

}  // namespace

TEST(ParquetFlat, RoundTripThroughOurReader) {
  std::string dir = bkd::test::scratch_dir("flat_rt");
  for (Codec codec : {Codec::ZSTD, Codec::UNCOMPRESSED}) {
    for (bool dict : {true, false}) {
      FlatRows r = make_rows(2500, 11);
      WriterOptions opt;
      opt.codec = codec, opt.row_group_rows = 1000, opt.dictionary = dict, opt.page_bytes = 1024;
      opt.byte_stream_split = !dict;
      std::string path = dir + "/flat.parquet";
      write_rows(path, r, opt);
      ParquetReader rd(path);
      ASSERT_EQ(rd.num_rows(), 2500);
      ASSERT_EQ(rd.num_row_groups(), 3);
      size_t row = 0;
      RowGroupData g;
      for (int i = 0; i < rd.num_row_groups(); ++i) {
        rd.read_row_group(i, g);
        const auto& f = g.columns[5];
        size_t fv = 0;
        for (int64_t k = 0; k < g.rows; ++k, ++row) {
          ASSERT_EQ(g.columns[0].data<int64_t>()[k], r.a[row]);
          ASSERT_EQ(g.columns[1].data<int32_t>()[k], r.b[row]);
          ASSERT_EQ(g.columns[2].values[k], r.c[row]);
          ASSERT_TRUE(bits_equal(g.columns[3].data<float>()[k], r.d[row])) << row;
          ASSERT_TRUE(bits_equal(g.columns[4].data<double>()[k], r.e[row])) << row;
          bool null = r.f[row] == INT32_MIN;
          ASSERT_EQ(f.valid[k] == 0, null) << row;
          if (!null) ASSERT_EQ(f.data<int32_t>()[fv++], r.f[row]);
        }
      }
      EXPECT_EQ(row, 2500u);
    }
  }
}

TEST(ParquetFlat, WriterRejectsMisuse) {
  std::string dir = bkd::test::scratch_dir("flat_misuse");
  ParquetWriter w(dir + "/x.parquet", {{"a", Type::INT32}});
  EXPECT_THROW(w.put_i64(0, 1), bkd::Error);  // wrong type
  w.put_i32(0, 1);
  EXPECT_THROW(w.put_i32(0, 2), bkd::Error);  // two values in one row
  EXPECT_THROW(w.put_null(0), bkd::Error);
}

TEST(ParquetFlat, AbandonedWriterLeavesNoFile) {
  std::string dir = bkd::test::scratch_dir("flat_abandon");
  {
    ParquetWriter w(dir + "/x.parquet", {{"a", Type::INT32}});
    w.put_i32(0, 1);
    w.end_row();
  }
  EXPECT_TRUE(bkd::list_dir(dir).empty());
}

TEST(ParquetFlat, DuckDbReadsOurValuesExactly) {
  BKD_REQUIRE_DUCKDB();
  std::string dir = bkd::test::scratch_dir("flat_duck");
  FlatRows r = make_rows(2500, 5);
  for (Codec codec : {Codec::ZSTD, Codec::UNCOMPRESSED}) {
    WriterOptions opt;
    opt.codec = codec, opt.row_group_rows = 700, opt.page_bytes = 2048;
    opt.byte_stream_split = codec == Codec::UNCOMPRESSED;
    opt.metadata = {{"k", "v"}};
    std::string path = dir + "/flat.parquet";
    write_rows(path, r, opt);
    auto rows = bkd::test::duckdb_rows({"SELECT a, b, c, d, e, f FROM read_parquet('" + path + "')"}, dir);
    ASSERT_EQ(rows.size(), r.a.size());
    for (size_t i = 0; i < rows.size(); ++i) {
      const auto& row = rows[i];
      ASSERT_TRUE(bkd::test::same_int(r.a[i], row[0])) << i << " " << row.dump();
      ASSERT_TRUE(bkd::test::same_int(r.b[i], row[1])) << i << " " << row.dump();
      ASSERT_EQ(row[2], r.c[i] ? "true" : "false") << i;
      ASSERT_TRUE(bkd::test::same_f32(r.d[i], row[3])) << i << " " << row.dump() << " want " << r.d[i];
      ASSERT_TRUE(bkd::test::same_float(r.e[i], row[4])) << i << " " << row.dump();
      if (r.f[i] == INT32_MIN) ASSERT_TRUE(row[5].is_null()) << i;
      else ASSERT_TRUE(bkd::test::same_int(r.f[i], row[5])) << i;
    }
    auto kv = bkd::test::duckdb_rows(
        {"SELECT value::VARCHAR FROM parquet_kv_metadata('" + path + "') WHERE key::VARCHAR = 'k'"}, dir);
    ASSERT_EQ(kv.size(), 1u);
    EXPECT_EQ(kv[0][0], "v");
  }
}

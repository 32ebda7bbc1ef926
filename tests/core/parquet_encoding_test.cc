// Thrift compact protocol and the RLE / bit-packed hybrid, checked against hand-derived bytes from the
// specifications and against simple reference encoders.
#include <gtest/gtest.h>

#include <random>

#include "core/parquet/encoding.h"
#include "core/parquet/parquet_format.h"
#include "core/parquet/thrift_compact.h"
#include "core/util/error.h"

using namespace bkd::parquet;

static std::string hex(const std::string& s) {
  static const char* d = "0123456789abcdef";
  std::string h;
  for (unsigned char c : s) h += d[c >> 4], h += d[c & 15];
  return h;
}

TEST(ThriftCompact, FieldHeadersAndValuesMatchTheSpec) {
  std::string out;
  CompactWriter w(out);
  w.field_i32(1, 5);         // delta 1, type 5 (i32): 0x15; zigzag(5) = 10
  w.field_i64(3, -1);        // delta 2, type 6: 0x26; zigzag(-1) = 1
  w.field_bool(4, true);     // delta 1, type 1: 0x11
  w.field_binary(20, "ab");  // delta 16: long form: type 8, zigzag(20) = 40, then length 2
  w.field_list_begin(21, ttype::kI32, 2);  // 0x19, list header 0x25
  w.elem_i32(1), w.elem_i32(-2);            // 2, 3
  w.struct_end();
  EXPECT_EQ(hex(out), "150a2601110828026162192502" "03" "00");
}

TEST(ThriftCompact, LongListHeaderAndRoundTrip) {
  std::string out;
  CompactWriter w(out);
  w.field_list_begin(1, ttype::kBinary, 20);
  for (int i = 0; i < 20; ++i) w.elem_binary(std::string(i, 'x'));
  w.field_struct_begin(2);
  w.field_i64(1, INT64_MIN);
  w.struct_end();
  w.struct_end();
  EXPECT_EQ(static_cast<uint8_t>(out[1]), 0xf8);  // long form list header
  CompactReader r(reinterpret_cast<const uint8_t*>(out.data()), out.size(), "test");
  std::vector<std::string> got;
  int64_t inner = 0;
  r.read_struct([&](int16_t id, uint8_t t) {
    if (id == 1) {
      uint8_t et;
      size_t n = r.read_list_header(t, &et);
      for (size_t i = 0; i < n; ++i) got.push_back(r.read_binary(et));
      return true;
    }
    if (id == 2) {
      r.read_struct([&](int16_t, uint8_t it) { return inner = r.read_int(it), true; });
      return true;
    }
    return false;
  });
  ASSERT_EQ(got.size(), 20u);
  EXPECT_EQ(got[19], std::string(19, 'x'));
  EXPECT_EQ(inner, INT64_MIN);
  EXPECT_EQ(r.consumed(), out.size());
}

TEST(ThriftCompact, TruncatedOrHostileInputThrows) {
  std::string out;
  CompactWriter w(out);
  w.field_binary(1, "hello");
  w.struct_end();
  for (size_t n = 0; n < out.size(); ++n) {
    CompactReader r(reinterpret_cast<const uint8_t*>(out.data()), n, "cut");
    EXPECT_THROW(r.read_struct([](int16_t, uint8_t) { return false; }), bkd::Error) << n;
  }
  std::string deep(100, static_cast<char>(0x1c));  // struct inside struct inside ...
  CompactReader r(reinterpret_cast<const uint8_t*>(deep.data()), deep.size(), "deep");
  try {
    r.read_struct([](int16_t, uint8_t) { return false; });
    FAIL() << "no error";
  } catch (const bkd::Error& e) {
    EXPECT_NE(std::string(e.what()).find("deep"), std::string::npos) << e.what();
  }
}

TEST(RleHybrid, KnownBytesFromEncodingsMd) {
  // Encodings.md example: values 0..7 at bit width 3 bit-packed -> header 0x03, bytes 0x88 0xC6 0xFA.
  std::vector<uint32_t> v = {0, 1, 2, 3, 4, 5, 6, 7};
  std::string out;
  rle_hybrid_encode_reference(v.data(), v.size(), 3, out);
  EXPECT_EQ(hex(out), "0388c6fa");
  // A run of 100 fives at width 3: RLE header 100 << 1 = 200 = varint c8 01, value byte 05.
  std::vector<uint32_t> run(100, 5);
  out.clear();
  rle_hybrid_encode(run.data(), run.size(), 3, out);
  EXPECT_EQ(hex(out), "c80105");
}

TEST(RleHybrid, RandomRoundTripMatchesReference) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 300; ++trial) {
    int bw = trial % 33;
    size_t n = rng() % 2000;
    std::vector<uint32_t> v(n);
    uint64_t maxv = bw == 32 ? 0xffffffffu : ((1ull << bw) - 1);
    uint32_t cur = 0;
    for (auto& x : v) {
      if (rng() % 4 == 0) cur = static_cast<uint32_t>(rng() & maxv);  // runs of varying length
      x = cur;
    }
    for (bool reference : {false, true}) {
      std::string enc;
      (reference ? rle_hybrid_encode_reference : rle_hybrid_encode)(v.data(), n, bw, enc);
      std::vector<uint32_t> back(n);
      size_t used = rle_hybrid_decode(reinterpret_cast<const uint8_t*>(enc.data()), enc.size(), bw, n, back.data(), "t");
      EXPECT_EQ(back, v) << "bw " << bw << " n " << n;
      EXPECT_EQ(used, enc.size());
    }
  }
}

TEST(RleHybrid, ShortDataIsAnErrorNotAnOverread) {
  std::vector<uint32_t> v(64);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint32_t>(i * 37 % 1000);
  std::string enc;
  rle_hybrid_encode(v.data(), v.size(), 10, enc);
  std::vector<uint32_t> back(v.size());
  for (size_t n = 0; n + 1 < enc.size(); ++n) {
    std::string cut = enc.substr(0, n);  // a fresh allocation the size of the cut, so ASan would see overreads
    EXPECT_THROW(rle_hybrid_decode(reinterpret_cast<const uint8_t*>(cut.data()), cut.size(), 10, v.size(), back.data(), "t"),
                 bkd::Error);
  }
}

TEST(ByteStreamSplit, RoundTrip) {
  std::vector<float> v = {1.5f, -2.25f, 0.0f, 1e30f, -1e-30f};
  std::string enc;
  byte_stream_split_encode(reinterpret_cast<const uint8_t*>(v.data()), v.size(), 4, enc);
  std::vector<float> back(v.size());
  byte_stream_split_decode(reinterpret_cast<const uint8_t*>(enc.data()), enc.size(), v.size(), 4,
                           reinterpret_cast<uint8_t*>(back.data()), "t");
  EXPECT_EQ(back, v);
  EXPECT_EQ(static_cast<uint8_t>(enc[0]), 0x00);  // low byte of 1.5f (0x3fc00000) first
}

#include "core/parquet/snappy.h"

TEST(Snappy, HandMadeBlockDecodes) {
  // length 6; literal "ab" (tag 0x04); copy-1 of 4 bytes at offset 2 (tag 0x01, offset 0x02) -> "ababab"
  const uint8_t block[] = {6, 0x04, 'a', 'b', 0x01, 0x02};
  uint8_t out[6];
  snappy_decompress(block, sizeof block, out, 6, "t");
  EXPECT_EQ(std::string(reinterpret_cast<char*>(out), 6), "ababab");
  EXPECT_THROW(snappy_decompress(block, sizeof block, out, 5, "t"), bkd::Error);
  const uint8_t bad_offset[] = {6, 0x04, 'a', 'b', 0x01, 0x03};  // offset 3 > 2 bytes produced
  EXPECT_THROW(snappy_decompress(bad_offset, sizeof bad_offset, out, 6, "t"), bkd::Error);
}

TEST(Snappy, RoundTripAndTruncation) {
  std::mt19937 rng(3);
  for (int trial = 0; trial < 40; ++trial) {
    size_t n = trial == 0 ? 0 : rng() % 200000;
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(trial % 3 == 0 ? rng() : (i / 7 + (rng() % 16 == 0)) % 5);
    std::string c;
    snappy_compress(reinterpret_cast<const uint8_t*>(s.data()), n, c);
    std::string back(n, '\0');
    snappy_decompress(reinterpret_cast<const uint8_t*>(c.data()), c.size(), reinterpret_cast<uint8_t*>(&back[0]), n, "t");
    ASSERT_EQ(back, s);
    if (trial % 3 != 0 && n > 1000) EXPECT_LT(c.size(), n / 2);
    if (n > 0) {
      std::string cut = c.substr(0, c.size() - 1);
      EXPECT_THROW(snappy_decompress(reinterpret_cast<const uint8_t*>(cut.data()), cut.size(),
                                     reinterpret_cast<uint8_t*>(&back[0]), n, "t"),
                   bkd::Error);
    }
  }
}

#include <map>

#include "core/parquet/dictionary.h"

TEST(Dictionary, BothPathsMatchAMapReference) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 40; ++trial) {
    const bool wide = trial % 4 == 0;  // values spread over the whole int32 range: hash path
    size_t n = 1 + rng() % 20000;
    std::vector<int32_t> v(n);
    for (auto& x : v) x = wide ? static_cast<int32_t>(static_cast<uint32_t>(rng() % 300) * 7919000u) : static_cast<int32_t>(rng() % 3000) - 1000;
    for (bool integers : {true, false}) {
      std::vector<uint8_t> dict;
      std::vector<uint32_t> idx;
      ASSERT_TRUE(build_dictionary(reinterpret_cast<const uint8_t*>(v.data()), n, 4, n, dict, idx, integers));
      std::map<int32_t, int> first_seen;
      for (int32_t x : v) first_seen.emplace(x, static_cast<int>(first_seen.size()));
      ASSERT_EQ(dict.size() / 4, first_seen.size());
      const int32_t* d = reinterpret_cast<const int32_t*>(dict.data());
      for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(d[idx[i]], v[i]);
        ASSERT_EQ(static_cast<int>(idx[i]), first_seen[v[i]]);  // first-seen order
      }
      if (first_seen.size() > 1) {
        EXPECT_FALSE(build_dictionary(reinterpret_cast<const uint8_t*>(v.data()), n, 4, first_seen.size() - 1, dict,
                                      idx, integers));
      }
    }
  }
}

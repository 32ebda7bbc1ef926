#include "core/data/token_file.h"

#include <gtest/gtest.h>

#include "core/util/error.h"
#include "test_util.h"

using namespace bkd;

TEST(TokenFile, RoundTrip) {
  test::TempDir d;
  std::vector<std::vector<int32_t>> docs = {{1, 2, 3}, {}, {99, 0}};
  write_token_file(d.file("t.tok"), docs, 100, "abc123");
  TokenFile f(d.file("t.tok"));
  EXPECT_EQ(f.num_docs(), 3u);
  EXPECT_EQ(f.num_tokens(), 5u);
  EXPECT_EQ(f.vocab_size(), 100);
  EXPECT_EQ(f.tokenizer_hash(), "abc123");
  EXPECT_EQ(f.doc(0), docs[0]);
  EXPECT_TRUE(f.doc(1).empty());
  EXPECT_EQ(f.doc(2), docs[2]);
  EXPECT_EQ(f.doc_begin(2), 3u);
}

TEST(TokenFile, RejectsOutOfVocabularyIds) {
  test::TempDir d;
  EXPECT_THROW(write_token_file(d.file("t.tok"), {{5, 100}}, 100, "h"), Error);
}

TEST(TokenFile, EveryTruncationAndCorruptionIsDetected) {
  test::TempDir d;
  write_token_file(d.file("t.tok"), {{1, 2, 3}, {4, 5}}, 10, "h");
  const std::string good = read_file(d.file("t.tok"));
  for (size_t n = 0; n < good.size(); ++n) {
    write_file_atomic(d.file("cut.tok"), good.substr(0, n));
    EXPECT_THROW(TokenFile(d.file("cut.tok")), Error) << "truncated to " << n;
  }
  std::string bad = good;
  bad[0] = 'X';
  write_file_atomic(d.file("bad.tok"), bad);
  try {
    TokenFile f(d.file("bad.tok"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("wrong magic"), std::string::npos);
    EXPECT_NE(e.hint().find("prepare"), std::string::npos);
  }
  bad = good;
  bad[bad.size() - 4] = 50;  // token id 50 >= vocab 10
  write_file_atomic(d.file("oov.tok"), bad);
  EXPECT_THROW(TokenFile(d.file("oov.tok")), Error);
}

#include "core/data/corpus.h"

#include <gtest/gtest.h>

#include <set>

#include "core/util/error.h"
#include "core/util/fs.h"
#include "test_util.h"

using namespace bkd;

TEST(Corpus, NormalizeText) {
  EXPECT_EQ(normalize_text("\xEF\xBB\xBFHello  \r\nworld\r\n\r\n\r\n\r\nEnd \n\n"), "Hello\nworld\n\nEnd");
  EXPECT_EQ(normalize_text("a\x01" "b\tc\x7f"), "ab\tc");
  EXPECT_EQ(normalize_text("cafe\xCC\x81"), "caf\xC3\xA9");  // NFD -> NFC
  EXPECT_EQ(normalize_text("bad \xFF byte"), "bad \xEF\xBF\xBD byte");
  EXPECT_EQ(normalize_text("old\rmac"), "old\nmac");
  EXPECT_EQ(normalize_text("  indented stays"), "  indented stays");
}

TEST(Corpus, ReadsTxtAndJsonl) {
  test::TempDir d;
  write_file_atomic(d.file("b.txt"), "Second doc.\n");
  write_file_atomic(d.file("a.txt"), "First doc.");
  write_file_atomic(d.file("c.jsonl"), "{\"text\": \"line one\"}\n\n{\"id\": \"x\", \"text\": \"line two\"}\n");
  write_file_atomic(d.file("empty.txt"), "   \n");
  write_file_atomic(d.file("ignored.md"), "not read");
  auto docs = read_corpus(d.path());
  ASSERT_EQ(docs.size(), 4u);
  EXPECT_EQ(docs[0].id, "a.txt");
  EXPECT_EQ(docs[1].text, "Second doc.");
  EXPECT_EQ(docs[2].id, "c.jsonl#1");
  EXPECT_EQ(docs[3].id, "c.jsonl#x");
}

TEST(Corpus, BadInputNamesPathAndFix) {
  test::TempDir d;
  try {
    read_corpus(d.file("missing"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(d.file("missing")), std::string::npos);
    EXPECT_NE(e.hint().find("make setup"), std::string::npos);
  }
  try {
    read_corpus(d.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no non-empty .txt or .jsonl"), std::string::npos);
  }
  write_file_atomic(d.file("x.jsonl"), "{\"text\": \"ok\"}\n{\"text\": 5}\n");
  try {
    read_corpus(d.path());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("x.jsonl:2"), std::string::npos) << e.what();
  }
  write_file_atomic(d.file("x.jsonl"), "{\"text\": \"ok\"\n");
  EXPECT_THROW(read_corpus(d.path()), Error);
}

TEST(Corpus, SplitIsDeterministicDisjointAndStable) {
  std::vector<Document> docs;
  for (int i = 0; i < 1000; ++i) docs.push_back({"doc" + std::to_string(i), "f", "text " + std::to_string(i)});
  auto a = split_corpus(docs, 7, 0.1, 0.1);
  auto b = split_corpus(docs, 7, 0.1, 0.1);
  auto ids = [](const std::vector<Document>& v) {
    std::set<std::string> s;
    for (const auto& d : v) s.insert(d.id);
    return s;
  };
  EXPECT_EQ(ids(a.train), ids(b.train));
  EXPECT_EQ(ids(a.test), ids(b.test));
  EXPECT_EQ(a.train.size() + a.val.size() + a.test.size(), 1000u);
  std::set<std::string> all;
  for (auto* v : {&a.train, &a.val, &a.test})
    for (const auto& d : *v) EXPECT_TRUE(all.insert(d.id).second) << d.id << " in two splits";
  EXPECT_NEAR(a.test.size(), 100, 35);
  EXPECT_NEAR(a.val.size(), 100, 35);
  // A document's split depends only on (seed, id): removing other documents never moves it.
  std::vector<Document> half(docs.begin(), docs.begin() + 500);
  auto c = split_corpus(half, 7, 0.1, 0.1);
  for (const auto& d : c.test) EXPECT_TRUE(ids(a.test).count(d.id)) << d.id;
  // Another seed gives another split.
  EXPECT_NE(ids(split_corpus(docs, 8, 0.1, 0.1).test), ids(a.test));
}

TEST(Corpus, TinyCorpusStillHasHeldOutSplits) {
  std::vector<Document> docs = {{"a", "f", "x"}, {"b", "f", "y"}, {"c", "f", "z"}};
  auto s = split_corpus(docs, 1, 0.05, 0.05);
  EXPECT_EQ(s.test.size(), 1u);
  EXPECT_EQ(s.val.size(), 1u);
  EXPECT_EQ(s.train.size(), 1u);
}

TEST(Corpus, SplitJsonlRoundTrip) {
  test::TempDir d;
  std::vector<Document> docs = {{"a", "a.txt", "line\n\"quoted\" \xC3\xA9"}, {"b", "b.txt", "two"}};
  write_split_jsonl(d.file("s.jsonl"), docs);
  auto back = read_split_jsonl(d.file("s.jsonl"));
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].text, docs[0].text);
  EXPECT_EQ(back[1].id, "b");
  EXPECT_THROW(read_split_jsonl(d.file("none.jsonl")), Error);
}

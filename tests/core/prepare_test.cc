// The prepare stage as a user runs it: `bitnet-kde prepare` on a small real corpus.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/data/corpus.h"
#include "core/data/token_file.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/util/fs.h"
#include "test_util.h"

using namespace bkd;

namespace {

void make_project(const test::TempDir& d, int n) { test::make_sotu_project(d, n); }

}  // namespace

TEST(Prepare, WritesSplitsTokenizersAndTokenFiles) {
  test::TempDir d;
  make_project(d, 24);
  auto r = test::run_cli(d.path(), "prepare");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string data = d.file("drive/data");
  std::set<std::string> seen;
  size_t docs = 0;
  for (const char* split : {"train", "val", "test"}) {
    auto v = read_split_jsonl(data + "/corpus/" + split + ".jsonl");
    EXPECT_FALSE(v.empty()) << split;
    for (const auto& doc : v) EXPECT_TRUE(seen.insert(doc.id).second) << doc.id << " is in two splits";
    docs += v.size();
    TokenFile student(data + "/tokens/" + split + ".student.tok");
    TokenFile teacher(data + "/tokens/" + split + ".teacher.tok");
    EXPECT_EQ(student.num_docs(), v.size());
    EXPECT_EQ(teacher.num_docs(), v.size());
    EXPECT_EQ(teacher.vocab_size(), 50257);
    EXPECT_EQ(student.vocab_size(), 1000);  // tiny preset
    EXPECT_GT(student.num_tokens(), 100u);
  }
  EXPECT_EQ(docs, 24u);
  auto tok = SpmTokenizer::load(data + "/tokenizer/student.model");
  TokenFile val(data + "/tokens/val.student.tok");
  EXPECT_EQ(val.tokenizer_hash(), tok->hash());
  EXPECT_EQ(tok->decode(val.doc(0)), read_split_jsonl(data + "/corpus/val.jsonl")[0].text);

  auto report = nlohmann::json::parse(read_file(d.file("drive/reports/prepare.json")));
  EXPECT_EQ(report["skipped"], false);
  EXPECT_EQ(report["_meta"]["report"], "prepare");
  EXPECT_EQ(report["_meta"]["preset"], "tiny");
  EXPECT_GT(report["throughput_mb_s"]["teacher_encode"].get<double>(), 0);

  // Idempotent: a second run finds everything current and skips.
  const std::string model_before = read_file(data + "/tokenizer/student.model");
  auto again = test::run_cli(d.path(), "prepare");
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("up to date"), std::string::npos) << again.output;
  // --force redoes the work and, being deterministic, writes the same tokenizer.
  auto forced = test::run_cli(d.path(), "prepare --force");
  ASSERT_EQ(forced.exit_code, 0) << forced.output;
  EXPECT_EQ(read_file(data + "/tokenizer/student.model"), model_before);
  // A changed setting makes the outputs stale.
  auto changed = test::run_cli(d.path(), "prepare", "SPLIT_SEED=99");
  ASSERT_EQ(changed.exit_code, 0) << changed.output;
  EXPECT_EQ(changed.output.find("up to date"), std::string::npos) << changed.output;
}

TEST(Prepare, MissingInputsNameThePathAndTheFix) {
  test::TempDir d;
  make_project(d, 3);
  auto r = test::run_cli(d.path(), "prepare", "CORPUS_DIR=" + d.file("nowhere"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(d.file("nowhere")), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("make setup"), std::string::npos) << r.output;

  auto g = test::run_cli(d.path(), "prepare", "GPT2_BPE_DIR=" + d.file("nobpe"));
  EXPECT_EQ(g.exit_code, 1) << g.output;
  EXPECT_NE(g.output.find(d.file("nobpe") + "/encoder.json"), std::string::npos) << g.output;
  EXPECT_NE(g.output.find("make setup"), std::string::npos) << g.output;

  auto t = test::run_cli(d.path(), "prepare", "STUDENT_TOKENIZER=" + d.file("none.model"));
  EXPECT_EQ(t.exit_code, 1) << t.output;
  EXPECT_NE(t.output.find(d.file("none.model")), std::string::npos) << t.output;
}

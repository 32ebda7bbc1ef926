// The teacher baseline: prompt drawing from the held-out split, the report's numbers, and the
// `teacher` verb end to end — the openai-compatible provider against our own server over loopback —
// plus its bad-input errors (missing key, unknown provider, untrained local teacher).
#include "core/teacher/baseline.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/serve/openai_server.h"
#include "core/teacher/local_provider.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "provider_test_model.h"
#include "test_util.h"

namespace bkd {
namespace {
using nlohmann::json;
using testing::BigramModel;

std::string write_val(const bkd::test::TempDir& d, const std::string& rel, const std::vector<std::string>& texts) {
  std::string lines;
  for (size_t i = 0; i < texts.size(); ++i)
    lines += json{{"id", "doc" + std::to_string(i)}, {"source", "sotu"}, {"text", texts[i]}}.dump() + "\n";
  const std::string path = d.file(rel);
  ensure_dir(parent_dir(path));
  write_file_atomic(path, lines);
  return path;
}

std::string words(int n, const std::string& w) {
  std::string s;
  for (int i = 0; i < n; ++i) s += (i ? "  " : "") + w + std::to_string(i);  // double spaces are kept
  return s;
}

TEST(ServeBaselinePrompts, RoundRobinChunksOfApproximateTokenLength) {
  bkd::test::TempDir d;
  const std::string path = write_val(d, "val.jsonl", {words(35, "a"), words(7, "b"), words(12, "c")});
  // 13 tokens / 1.3 = 10 words per prompt.
  auto p = draw_baseline_prompts(path, 5, 13);
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0].id, "doc0#0");
  EXPECT_EQ(p[1].id, "doc1#0");  // a short first chunk is fine
  EXPECT_EQ(p[2].id, "doc2#0");
  EXPECT_EQ(p[3].id, "doc0#1");
  EXPECT_EQ(p[4].id, "doc0#2");  // doc2's second chunk is a 2-word tail: skipped
  EXPECT_EQ(p[0].text, words(10, "a"));
  EXPECT_EQ(p[1].text, words(7, "b"));
  EXPECT_EQ(p[0].source, "sotu");
  EXPECT_EQ(draw_baseline_prompts(path, 5, 13)[3].text, p[3].text);  // deterministic
}

TEST(ServeBaselinePrompts, MissingSplitNamesTheCommandToRun) {
  try {
    draw_baseline_prompts("/nonexistent/val.jsonl", 3, 16);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/val.jsonl"), std::string::npos);
    EXPECT_NE(e.hint().find("bitnet-kde prepare"), std::string::npos);
  }
  bkd::test::TempDir d;
  write_file_atomic(d.file("bad.jsonl"), "{\"id\":1}\n");
  EXPECT_THROW(draw_baseline_prompts(d.file("bad.jsonl"), 3, 16), Error);
}

TEST(ServeBaselineStats, Percentiles) {
  EXPECT_DOUBLE_EQ(percentile({3, 1, 2}, 0.5), 2);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 0.9), 10);
  EXPECT_DOUBLE_EQ(percentile({5}, 0.99), 5);
  EXPECT_TRUE(std::isnan(percentile({}, 0.5)));
  EXPECT_TRUE(distribution_json({}).is_null());
}

TEST(ServeBaseline, LocalProviderReport) {
  LocalProvider p(std::make_shared<BigramModel>());
  std::vector<BaselinePrompt> prompts = {{"a#0", "", "The state of"}, {"b#0", "", "We the people"}, {"c#0", "", "In 1850,"}};
  BaselineOptions o;
  o.max_new_tokens = 12;
  o.top_k = 5;
  o.price_per_1k_tokens = 2.0;
  o.in_flight = 2;
  json r = run_baseline(p, prompts, o);
  EXPECT_EQ(r["provider"], "local");
  EXPECT_EQ(r["model"], "bigram-test");
  EXPECT_TRUE(r["capabilities"]["logprobs"].get<bool>());
  EXPECT_EQ(r["requests"]["ok"], 3);
  EXPECT_TRUE(r["determinism"]["deterministic"].get<bool>());
  EXPECT_EQ(r["determinism"]["prompts_checked"], 3);
  EXPECT_FALSE(r["time_to_first_token_s"].is_null());  // measurable in process
  EXPECT_GT(r["decode_tokens_per_s"]["mean"].get<double>(), 0);
  EXPECT_LE(r["latency_s"]["p50"].get<double>(), r["latency_s"]["p99"].get<double>());
  const int64_t total = r["usage"]["total_tokens"];
  EXPECT_EQ(total, r["usage"]["prompt_tokens"].get<int64_t>() + r["usage"]["completion_tokens"].get<int64_t>());
  EXPECT_NEAR(r["cost_estimate"]["cost"].get<double>(), total / 1000.0 * 2.0, 1e-12);
  EXPECT_EQ(r["settings"]["top_k_used"], 5);
  EXPECT_EQ(r["examples"].size(), 3u);
}

// A stream that a buffering proxy delivers in one burst: 64 tokens, time to first token 0.5 s, all of
// them by 0.5000001 s. (n - 1) / (latency - TTFT) would say 6e8 tokens/s; the report gives no decode
// rate for such requests and counts them, and the end-to-end rate stays.
TEST(ServeBaseline, BurstStreamsGiveNoDecodeRate) {
  class Burst : public Provider {
   public:
    std::string name() const override { return "burst"; }
    std::string model() const override { return "m"; }
    Capabilities capabilities() override { return {}; }
    Generation generate(const GenerateRequest&) override {
      Generation g;
      g.text = std::string(64, 'a');
      g.usage.completion_tokens = 64;
      g.latency_s = 0.5000001;
      g.ttfb_s = 0.4;  // it came over HTTP
      g.ttft_s = 0.5;
      return g;
    }
  } burst;
  std::vector<BaselinePrompt> prompts = {{"a#0", "", "The state of"}, {"b#0", "", "We the people"}};
  BaselineOptions o;
  o.determinism_prompts = 0;
  json r = run_baseline(burst, prompts, o);
  EXPECT_TRUE(r["decode_tokens_per_s"].is_null()) << r["decode_tokens_per_s"];
  EXPECT_EQ(r["decode_burst_requests"], 2);
  EXPECT_NEAR(r["end_to_end_tokens_per_s"]["p50"].get<double>(), 64 / 0.5000001, 1e-6);
}

class TeacherVerbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_val(dir, "runs/data/corpus/val.jsonl",
              {words(80, "liberty"), words(50, "union"), words(30, "congress"), words(90, "nation")});
    ServeOptions o;
    o.api_key = key;
    server = std::make_unique<OpenAiServer>(std::make_shared<LocalProvider>(std::make_shared<BigramModel>()), o);
    server->start();
  }
  std::string env(const std::string& extra) const {
    return "DRIVE_ROOT='" + dir.file("runs") + "' PRESET=tiny BASELINE_PROMPTS=5 PROMPT_TOKENS=16 MAX_NEW_TOKENS=10 TOP_K=5 "
           "HTTP_BACKOFF_BASE_S=0.002 REQUESTS_PER_MIN=0 " + extra;
  }
  bkd::test::TempDir dir;
  const std::string key = "verb-test-key-0123456789";
  std::unique_ptr<OpenAiServer> server;
};

TEST_F(TeacherVerbTest, OpenAiCompatibleAgainstOurServerWritesTheReport) {
  const std::string e = env("TEACHER_PROVIDER=openai-compatible TEACHER_MODEL=bigram-test OPENAI_COMPAT_BASE_URL='" +
                            server->base_url() + "' OPENAI_COMPAT_API_KEY=" + key);
  auto r = bkd::test::run_cli(dir.path(), "teacher", e);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find(key), std::string::npos) << r.output;
  const std::string path = dir.file("runs/reports/teacher_baseline.json");
  ASSERT_TRUE(file_exists(path)) << r.output;
  const std::string text = read_file(path);
  EXPECT_EQ(text.find(key), std::string::npos);
  json j = json::parse(text);
  EXPECT_EQ(j["provider"], "openai-compatible");
  EXPECT_EQ(j["model"], "bigram-test");
  EXPECT_TRUE(j["capabilities"]["logprobs"].get<bool>());
  EXPECT_EQ(j["requests"]["ok"], 5);
  EXPECT_EQ(j["requests"]["from_cache"], 0);
  EXPECT_TRUE(j["determinism"]["deterministic"].get<bool>());
  ASSERT_FALSE(j["time_to_first_token_s"].is_null());  // streamed, so measurable
  EXPECT_LE(j["time_to_first_token_s"]["p50"].get<double>(), j["latency_s"]["max"].get<double>());
  EXPECT_FALSE(j["latency_s"].is_null());
  EXPECT_EQ(j["_meta"]["report"], "teacher_baseline");
  // A re-run pays nothing: every answer comes from the response cache.
  auto again = bkd::test::run_cli(dir.path(), "teacher", e);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(json::parse(read_file(path))["requests"]["from_cache"], 5);
}

TEST_F(TeacherVerbTest, MissingKeyIsNamedAndNothingIsSent) {
  for (const auto& [p, var] : std::vector<std::pair<std::string, std::string>>{
           {"openai", "OPENAI_API_KEY"}, {"gemini", "GEMINI_API_KEY"}, {"anthropic", "ANTHROPIC_API_KEY"},
           {"groq", "GROQ_API_KEY"}, {"aimlapi", "AIMLAPI_API_KEY"}}) {
    auto r = bkd::test::run_cli(dir.path(), "teacher", env("TEACHER_PROVIDER=" + p + " TEACHER_MODEL=m"));
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find(var), std::string::npos) << r.output;
  }
}

TEST_F(TeacherVerbTest, UnknownProviderAndExternalHostsAreRefused) {
  auto r = bkd::test::run_cli(dir.path(), "teacher", env("TEACHER_PROVIDER=mystery"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("TEACHER_PROVIDER"), std::string::npos) << r.output;
  auto ext = bkd::test::run_cli(dir.path(), "teacher", env("TEACHER_PROVIDER=openai OPENAI_API_KEY=sk-test-0123456789abcdef"));
  EXPECT_EQ(ext.exit_code, 2) << ext.output;
  EXPECT_NE(ext.output.find("SKIP_EXTERNAL"), std::string::npos) << ext.output;
  EXPECT_EQ(ext.output.find("sk-test-0123456789abcdef"), std::string::npos) << ext.output;
}

TEST_F(TeacherVerbTest, UnknownModelAtTheServerIsClear) {
  auto r = bkd::test::run_cli(dir.path(), "teacher",
                              env("TEACHER_PROVIDER=openai-compatible TEACHER_MODEL=no-such-model OPENAI_COMPAT_BASE_URL='" +
                                  server->base_url() + "' OPENAI_COMPAT_API_KEY=" + key));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("no-such-model"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("TEACHER_MODEL"), std::string::npos) << r.output;
}

TEST_F(TeacherVerbTest, UntrainedLocalTeacherNamesTheTrainCommand) {
  auto r = bkd::test::run_cli(dir.path(), "teacher", env("TEACHER_PROVIDER=local"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("bitnet-kde train --role teacher"), std::string::npos) << r.output;
  auto s = bkd::test::run_cli(dir.path(), "serve", env(""));
  EXPECT_EQ(s.exit_code, 1) << s.output;
  EXPECT_NE(s.output.find("bitnet-kde train --role teacher"), std::string::npos) << s.output;
}

}  // namespace
}  // namespace bkd

// `serve` end to end: the openai-compatible provider against our own server over loopback gives
// the same tokens and logprobs as the in-process local provider; errors come in OpenAI's shape;
// the official OpenAI Node SDK can call it with logprobs.
#include "core/serve/openai_server.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <thread>

#include "core/http/http_client.h"
#include "core/teacher/local_provider.h"
#include "core/teacher/provider_factory.h"
#include "core/util/fs.h"
#include "provider_test_model.h"
#include "provider_test_settings.h"
#include "test_util.h"

namespace bkd {
namespace {
using nlohmann::json;
using testing::BigramModel;

const std::string kKey = "serve-test-key-0123456789";

class ServeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    local = std::make_shared<LocalProvider>(std::make_shared<BigramModel>());
    ServeOptions o;
    o.api_key = kKey;
    o.max_tokens = 64;
    o.max_body_bytes = 4096;
    server = std::make_unique<OpenAiServer>(local, o);
    server->start();
  }
  std::unique_ptr<Provider> remote() {
    Settings s = testing::provider_settings(dir, {{"TEACHER_PROVIDER", "openai-compatible"},
                                                  {"TEACHER_MODEL", "bigram-test"},
                                                  {"OPENAI_COMPAT_BASE_URL", server->base_url()},
                                                  {"OPENAI_COMPAT_API_KEY", kKey}});
    return make_provider(s);
  }
  HttpResponse raw(const std::string& path, const std::string& body, const std::string& key = kKey,
                   const std::string& method = "POST") {
    HttpOptions o;
    o.max_retries = 0;
    HttpClient c(o);
    HttpRequest r;
    r.method = method;
    r.url = "http://127.0.0.1:" + std::to_string(server->port()) + path;
    r.body = body;
    r.use_cache = false;
    if (!key.empty()) r.headers.push_back({"Authorization", "Bearer " + key});
    return c.send(r);
  }
  static void expect_same(const Generation& a, const Generation& b) {
    ASSERT_EQ(a.tokens.size(), b.tokens.size());
    EXPECT_EQ(a.text, b.text);
    EXPECT_EQ(a.finish_reason, b.finish_reason);
    for (size_t i = 0; i < a.tokens.size(); ++i) {
      EXPECT_EQ(a.tokens[i].id, b.tokens[i].id) << i;
      EXPECT_EQ(a.tokens[i].bytes, b.tokens[i].bytes) << i;
      EXPECT_NEAR(a.tokens[i].logprob, b.tokens[i].logprob, 1e-12) << i;
      ASSERT_EQ(a.tokens[i].top.size(), b.tokens[i].top.size()) << i;
      for (size_t k = 0; k < a.tokens[i].top.size(); ++k) {
        EXPECT_EQ(a.tokens[i].top[k].id, b.tokens[i].top[k].id);
        EXPECT_NEAR(a.tokens[i].top[k].logprob, b.tokens[i].top[k].logprob, 1e-12);
      }
      EXPECT_NEAR(a.tokens[i].log_other, b.tokens[i].log_other, 1e-9) << i;
    }
    EXPECT_EQ(a.usage.prompt_tokens, b.usage.prompt_tokens);
    EXPECT_EQ(a.usage.completion_tokens, b.usage.completion_tokens);
  }
  bkd::test::TempDir dir;
  std::shared_ptr<LocalProvider> local;
  std::unique_ptr<OpenAiServer> server;
};

TEST_F(ServeTest, RemoteThroughServeEqualsLocalInProcess) {
  auto r = remote();
  Capabilities c = r->capabilities();
  EXPECT_TRUE(c.logprobs);
  EXPECT_EQ(c.max_top_k, 20);
  EXPECT_TRUE(c.token_ids);
  for (double temperature : {0.0, 1.0}) {
    GenerateRequest req;
    req.prompt = "Once upon a time";
    req.max_tokens = 40;
    req.top_k = 5;
    req.temperature = temperature;
    req.seed = 11;
    Generation a = local->generate(req);
    Generation b = r->generate(req);
    SCOPED_TRACE(temperature);
    expect_same(a, b);
  }
}

TEST_F(ServeTest, StreamedRepliesEqualNonStreamedAndTimeTheFirstToken) {
  auto r = remote();
  GenerateRequest req;
  req.prompt = "It was the best of times";
  req.max_tokens = 30;
  req.top_k = 3;
  req.stream = true;
  req.use_cache = false;
  Generation a = local->generate(req);
  Generation b = r->generate(req);
  expect_same(a, b);
  EXPECT_GE(b.ttft_s, 0);
  EXPECT_LE(b.ttft_s, b.latency_s);
  // Without logprobs, the streamed content deltas are the text.
  req.top_k = 0;
  Generation c = r->generate(req);
  EXPECT_EQ(c.text, a.text);
  EXPECT_EQ(c.usage.completion_tokens, a.usage.completion_tokens);
}

TEST_F(ServeTest, RemoteScoringThroughPromptLogprobsEqualsLocalScoring) {
  auto r = remote();
  ASSERT_TRUE(r->capabilities().scoring) << r->capabilities().note;
  const std::string text = "caf\xc3\xa9 au lait, s'il vous pla\xc3\xaet.";
  Scoring a = local->score(text, 4);
  Scoring b = r->score(text, 4);
  ASSERT_EQ(a.tokens.size(), b.tokens.size());
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    EXPECT_EQ(a.tokens[i].id, b.tokens[i].id) << i;
    EXPECT_EQ(a.tokens[i].bytes, b.tokens[i].bytes) << i;  // the first too: it is the text before the rest
    if (i == 0) continue;  // nothing predicts the first token: vLLM sends null there
    EXPECT_NEAR(a.tokens[i].logprob, b.tokens[i].logprob, 1e-12) << i;
    EXPECT_EQ(a.tokens[i].rank, b.tokens[i].rank) << i;
    ASSERT_EQ(a.tokens[i].top.size(), b.tokens[i].top.size()) << i;
    for (size_t k = 0; k < a.tokens[i].top.size(); ++k) {
      EXPECT_EQ(a.tokens[i].top[k].id, b.tokens[i].top[k].id);
      EXPECT_NEAR(a.tokens[i].top[k].logprob, b.tokens[i].top[k].logprob, 1e-12);
    }
    EXPECT_NEAR(a.tokens[i].log_other, b.tokens[i].log_other, 1e-9) << i;
  }
}

TEST_F(ServeTest, ByteSplitCharactersSurviveTheRoundTrip) {
  // Sample until a generation holds a byte >= 0x80 (a token that is not UTF-8 on its own).
  auto r = remote();
  bool found = false;
  for (uint64_t seed = 0; seed < 200 && !found; ++seed) {
    GenerateRequest req;
    req.prompt = "caf";
    req.max_tokens = 12;
    req.top_k = 3;
    req.temperature = 1.5;
    req.seed = seed;
    Generation a = local->generate(req);
    bool high = false;
    for (unsigned char ch : a.text) high = high || ch >= 0x80;
    if (!high) continue;
    found = true;
    Generation b = r->generate(req);
    expect_same(a, b);  // text is rebuilt from `bytes`, not from the (replaced) content string
  }
  EXPECT_TRUE(found);
}

TEST_F(ServeTest, ModelsAndCompletionsEndpoints) {
  auto m = raw("/v1/models", "", kKey, "GET");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(json::parse(m.body)["data"][0]["id"], "bigram-test");
  EXPECT_EQ(raw("/v1/models/bigram-test", "", kKey, "GET").status, 200);
  EXPECT_EQ(raw("/v1/models/other", "", kKey, "GET").status, 404);

  auto c = raw("/v1/completions", R"({"model":"bigram-test","prompt":"The ","max_tokens":6,"temperature":0,"logprobs":3})");
  ASSERT_EQ(c.status, 200) << c.body;
  json j = json::parse(c.body);
  GenerateRequest req;
  req.prompt = "The ";
  req.max_tokens = 6;
  req.top_k = 3;
  Generation a = local->generate(req);
  const json& lp = j["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), a.tokens.size());
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), a.tokens[i].logprob, 1e-12);
    EXPECT_EQ(lp["top_logprobs"][i].size(), 3u);
  }
  EXPECT_EQ(j["choices"][0]["text"], a.text);
  EXPECT_EQ(j["usage"]["completion_tokens"], a.usage.completion_tokens);
}

// What OpenAI's API accepts, `serve` accepts: the auth scheme in any case (RFC 7235), any integer
// seed, and a system message, which a base model does not continue (the text is the user message).
TEST_F(ServeTest, AcceptsWhatOpenAiAccepts) {
  HttpOptions o;
  o.max_retries = 0;
  HttpClient c(o);
  auto post = [&](const std::string& auth, const json& body) {
    HttpRequest r;
    r.method = "POST";
    r.url = "http://127.0.0.1:" + std::to_string(server->port()) + "/v1/chat/completions";
    r.body = body.dump();
    r.use_cache = false;
    r.headers.push_back({"Authorization", auth});
    return c.send(r);
  };
  const json plain = {{"model", "bigram-test"}, {"messages", {{{"role", "user"}, {"content", "the cat"}}}}, {"max_tokens", 6}};
  const HttpResponse ref = post("Bearer " + std::string(kKey), plain);
  ASSERT_EQ(ref.status, 200) << ref.body;
  for (const std::string scheme : {"bearer ", "BEARER ", "Bearer   "}) EXPECT_EQ(post(scheme + kKey, plain).status, 200) << scheme;
  EXPECT_EQ(post("Basic " + std::string(kKey), plain).status, 401);
  json seeded = plain;
  seeded["seed"] = -1;
  EXPECT_EQ(post("Bearer " + std::string(kKey), seeded).status, 200);
  seeded["seed"] = "one";
  EXPECT_EQ(post("Bearer " + std::string(kKey), seeded).status, 400);
  json with_system = plain;
  with_system["messages"] = {{{"role", "system"}, {"content", kContinuationInstruction}}, {{"role", "user"}, {"content", "the cat"}}};
  const HttpResponse sys = post("Bearer " + std::string(kKey), with_system);
  ASSERT_EQ(sys.status, 200) << sys.body;
  EXPECT_EQ(json::parse(sys.body)["choices"][0]["message"]["content"], json::parse(ref.body)["choices"][0]["message"]["content"]);
  // The model saw the user's text alone (the bigram model's reply cannot tell; the prompt's size can).
  EXPECT_EQ(json::parse(sys.body)["usage"]["prompt_tokens"], json::parse(ref.body)["usage"]["prompt_tokens"]);
}

TEST_F(ServeTest, ErrorsComeInOpenAiShape) {
  auto check = [&](const HttpResponse& r, int status, const std::string& needle) {
    EXPECT_EQ(r.status, status) << r.body;
    json j = json::parse(r.body, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.body;
    ASSERT_TRUE(j.contains("error")) << r.body;
    EXPECT_TRUE(j["error"]["message"].is_string());
    EXPECT_TRUE(j["error"]["type"].is_string());
    EXPECT_NE(j["error"]["message"].get<std::string>().find(needle), std::string::npos) << r.body;
  };
  const std::string ok = R"({"model":"bigram-test","messages":[{"role":"user","content":"hi"}],"max_tokens":2)";
  check(raw("/v1/chat/completions", ok + "}", ""), 401, "API key");
  check(raw("/v1/chat/completions", ok + "}", "wrong-key-000000"), 401, "Incorrect API key");
  EXPECT_EQ(raw("/v1/chat/completions", ok + "}", "wrong-key-000000").body.find(kKey), std::string::npos);
  check(raw("/v1/chat/completions", "{not json"), 400, "JSON");
  check(raw("/v1/chat/completions", R"({"model":"gpt-4","messages":[{"role":"user","content":"hi"}]})"), 404, "gpt-4");
  check(raw("/v1/chat/completions", ok + R"(,"logprobs":true,"top_logprobs":21})"), 400, "top_logprobs");
  check(raw("/v1/chat/completions", ok + R"(,"top_logprobs":2})"), 400, "logprobs");
  check(raw("/v1/chat/completions", R"({"model":"bigram-test","messages":[{"role":"user","content":"hi"}],"max_tokens":65})"), 400, "max_tokens");
  check(raw("/v1/completions", R"({"model":"bigram-test","prompt":"hi","stream":true})"), 400, "stream");
  check(raw("/v1/chat/completions", R"({"model":"bigram-test","messages":[]})"), 400, "messages");
  check(raw("/v1/chat/completions", ok + R"(,"temperature":3})"), 400, "temperature");
  check(raw("/v1/chat/completions", R"({"model":"bigram-test","messages":[{"role":"user","content":")" +
                                        std::string(5000, 'x') + R"("}]})"),
        413, "larger");
  check(raw("/v1/nowhere", "{}"), 404, "/v1/nowhere");
  EXPECT_EQ(raw("/v1/chat/completions", ok + "}").status, 200);
}

TEST_F(ServeTest, ServesConcurrentRequestsConsistently) {
  const std::string body =
      R"({"model":"bigram-test","messages":[{"role":"user","content":"Hello"}],"max_tokens":20,"temperature":0,"logprobs":true,"top_logprobs":4})";
  std::vector<std::string> texts(6);
  std::vector<int> status(6);
  std::vector<std::thread> ts;
  for (int i = 0; i < 6; ++i)
    ts.emplace_back([&, i] {
      auto r = raw("/v1/chat/completions", body);
      status[i] = r.status;
      texts[i] = json::parse(r.body)["choices"][0]["logprobs"].dump();
    });
  for (auto& t : ts) t.join();
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(status[i], 200);
    EXPECT_EQ(texts[i], texts[0]);
  }
}

TEST_F(ServeTest, OfficialOpenAiNodeSdkParsesTheReply) {
  const std::string tools = BKD_TEST_TOOLS_DIR;
  if (std::system("command -v node >/dev/null 2>&1") != 0) GTEST_SKIP() << "node is not installed";
  if (!dir_exists(tools + "/node_modules/openai"))
    GTEST_SKIP() << "npm `openai` not installed: run `bash scripts/setup.sh --test-tools`";
  auto res = bkd::test::run_command("node '" + tools + "/openai_sdk_logprobs.js' '" + server->base_url() + "' '" + kKey +
                                    "' bigram-test 'The quick' 12 5");
  ASSERT_EQ(res.exit_code, 0) << res.output;
  json j = json::parse(res.output.substr(res.output.find('{')));
  EXPECT_EQ(j["models"][0], "bigram-test");
  EXPECT_EQ(j["object"], "chat.completion");
  GenerateRequest req;
  req.prompt = "The quick";
  req.max_tokens = 12;
  req.top_k = 5;
  Generation a = local->generate(req);
  ASSERT_EQ(j["tokens"].size(), a.tokens.size());
  for (size_t i = 0; i < a.tokens.size(); ++i) {
    EXPECT_EQ(j["tokens"][i]["token"], a.tokens[i].text);
    EXPECT_NEAR(j["tokens"][i]["logprob"].get<double>(), a.tokens[i].logprob, 1e-12);
    ASSERT_EQ(j["tokens"][i]["top"].size(), 5u);
    EXPECT_NEAR(j["tokens"][i]["top"][0]["logprob"].get<double>(), a.tokens[i].top[0].logprob, 1e-12);
  }
  EXPECT_EQ(j["usage"]["completion_tokens"], a.usage.completion_tokens);
  EXPECT_EQ(j["stream"]["content"], j["content"]);
  EXPECT_EQ(j["stream"]["tokens"], a.tokens.size());
  EXPECT_EQ(j["stream"]["usage"]["completion_tokens"], a.usage.completion_tokens);
  EXPECT_EQ(j["bad_key"]["status"], 401);
  EXPECT_EQ(j["bad_key"]["code"], "invalid_api_key");
}

}  // namespace
}  // namespace bkd

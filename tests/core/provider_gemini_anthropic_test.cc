// Gemini (generateContent + logprobsResult) and Anthropic (Messages, no logprobs) against replies
// in their documented shapes, with their rate-limit signals, from a loopback fault server.
#include <gtest/gtest.h>

#include <cmath>

#include "core/teacher/anthropic_provider.h"
#include "core/teacher/gemini_provider.h"
#include "core/teacher/provider_factory.h"
#include "http_fault_server.h"
#include "provider_test_settings.h"

namespace bkd {
namespace {
using nlohmann::json;
using testing::FaultServer;

// Proto3 JSON: the chosen token with logProbability 0 and the tokenId 0 are omitted.
const char* kGeminiReply = R"({
  "candidates": [{
    "content": {"role": "model", "parts": [{"text": "Hello"}, {"text": " there"}]},
    "finishReason": "MAX_TOKENS", "avgLogprobs": -0.1,
    "logprobsResult": {
      "topCandidates": [
        {"candidates": [{"token": "Hello", "tokenId": 9259}, {"token": "Hi", "tokenId": 2151, "logProbability": -3.2}]},
        {"candidates": [{"token": " there", "tokenId": 1104, "logProbability": -0.4},
                        {"token": "!", "logProbability": -1.3}]}],
      "chosenCandidates": [{"token": "Hello", "tokenId": 9259}, {"token": " there", "tokenId": 1104, "logProbability": -0.4}]
    }}],
  "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}})";

TEST(ProviderGeminiParse, ReadsLogprobsResultWithOmittedZeros) {
  Generation g = parse_gemini_response(json::parse(kGeminiReply), true);
  EXPECT_EQ(g.text, "Hello there");
  ASSERT_EQ(g.tokens.size(), 2u);
  EXPECT_EQ(g.tokens[0].logprob, 0.0);  // omitted = 0
  EXPECT_EQ(g.tokens[0].id, 9259);
  EXPECT_EQ(g.tokens[1].top[1].id, 0);  // omitted tokenId = 0
  EXPECT_NEAR(g.tokens[1].top[1].logprob, -1.3, 1e-12);
  EXPECT_EQ(g.usage.total_tokens, 6);
  EXPECT_EQ(g.finish_reason, "MAX_TOKENS");
  EXPECT_TRUE(std::isfinite(g.tokens[1].log_other));
  // Top-K holding all the mass (logprob 0): Other is clamped, never NaN.
  EXPECT_TRUE(std::isfinite(g.tokens[0].log_other));
  EXPECT_THROW(parse_gemini_response(json::parse(R"({"candidates":[{"content":{"parts":[{"text":"x"}]}}]})"), true), Error);
  EXPECT_THROW(parse_gemini_response(json::parse(R"({"promptFeedback":{"blockReason":"SAFETY"}})"), false), Error);
}

TEST(ProviderGeminiRequest, DocumentedShape) {
  GenerateRequest req;
  req.prompt = "Hi";
  req.max_tokens = 5;
  req.top_k = 3;
  json b = build_gemini_request(req);
  EXPECT_EQ(b["contents"][0]["parts"][0]["text"], "Hi");
  EXPECT_EQ(b["generationConfig"]["maxOutputTokens"], 5);
  EXPECT_EQ(b["generationConfig"]["responseLogprobs"], true);
  EXPECT_EQ(b["generationConfig"]["logprobs"], 3);
}

class GeminiAnthropicTest : public ::testing::Test {
 protected:
  std::unique_ptr<Provider> provider(const std::string& name) {
    Settings s = testing::provider_settings(
        dir, {{"TEACHER_PROVIDER", name}, {"TEACHER_MODEL", name == "gemini" ? "gemini-test" : "claude-test"},
              {"GEMINI_BASE_URL", server.base_url() + "/v1beta"}, {"GEMINI_API_KEY", gemini_key},
              {"ANTHROPIC_BASE_URL", server.base_url() + "/v1"}, {"ANTHROPIC_API_KEY", anthropic_key}});
    return make_provider(s);
  }
  const std::string gemini_key = "AIzaTestKey0123456789abcdefgh";
  const std::string anthropic_key = "sk-" "ant-test-0123456789abcdef";
  bkd::test::TempDir dir;
  FaultServer server;
};

TEST_F(GeminiAnthropicTest, GeminiRetriesResourceExhaustedAndKeepsTheKeyInAHeader) {
  const std::string path = "/v1beta/models/gemini-test:generateContent";
  server.script(path, {{200, kGeminiReply},  // capability probe
                       {429, R"({"error":{"code":429,"message":"You exceeded your current quota. Please retry in 0.03s.",
                          "status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0.03s"}]}})"},
                       {503, R"({"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}})"},
                       {200, kGeminiReply}});
  auto p = provider("gemini");
  EXPECT_TRUE(p->capabilities().logprobs);
  GenerateRequest req;
  req.prompt = "Say hello";
  req.top_k = 2;
  req.max_tokens = 2;
  Generation g = p->generate(req);
  EXPECT_EQ(g.text, "Hello there");
  EXPECT_EQ(g.attempts, 3);
  for (const auto& s : server.seen()) {
    EXPECT_EQ(s.path.find("key="), std::string::npos);
    EXPECT_EQ(s.headers.find("x-goog-api-key")->second, gemini_key);
  }
}

TEST_F(GeminiAnthropicTest, GeminiZeroQuotaIsNotRetried) {
  server.script("/v1beta/models/gemini-test:generateContent",
                {{429, R"({"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Quota exceeded for metric: generate_content_free_tier_requests, limit: 0"}})"}});
  auto p = provider("gemini");
  GenerateRequest req;
  req.prompt = "x";
  EXPECT_THROW(p->generate(req), HttpError);
  EXPECT_EQ(server.hits(), 1u);
}

TEST_F(GeminiAnthropicTest, GeminiModelWithoutLogprobs) {
  server.script("/v1beta/models/gemini-test:generateContent",
                {{400, R"({"error":{"code":400,"message":"Logprobs is not supported for the current model.","status":"INVALID_ARGUMENT"}})"}});
  auto p = provider("gemini");
  EXPECT_FALSE(p->capabilities().logprobs);
  GenerateRequest req;
  req.prompt = "x";
  req.top_k = 5;
  EXPECT_THROW(p->generate(req), UsageError);
}

TEST_F(GeminiAnthropicTest, AnthropicIsABaselineOnlyTeacher) {
  server.script("/v1/messages",
                {{529, R"({"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}})"},
                 {429, R"({"type":"error","error":{"type":"rate_limit_error","message":"slow down"}})", {{"retry-after", "0.02"}}},
                 {200, R"({"id":"msg_1","type":"message","role":"assistant","model":"claude-test",
                    "content":[{"type":"text","text":"Hi there"}],"stop_reason":"max_tokens",
                    "usage":{"input_tokens":5,"output_tokens":3}})"}});
  auto p = provider("anthropic");
  Capabilities c = p->capabilities();
  EXPECT_FALSE(c.logprobs);
  GenerateRequest req;
  req.prompt = "Hello";
  req.max_tokens = 3;
  req.top_k = 5;
  try {
    p->generate(req);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(e.hint().find("openai"), std::string::npos) << e.hint();
  }
  EXPECT_EQ(server.hits(), 0u);
  req.top_k = 0;
  Generation g = p->generate(req);
  EXPECT_EQ(g.text, "Hi there");
  EXPECT_EQ(g.usage.completion_tokens, 3);
  EXPECT_EQ(g.usage.prompt_tokens, 5);
  EXPECT_EQ(g.attempts, 3);
  auto seen = server.seen();
  EXPECT_EQ(seen[0].headers.find("x-api-key")->second, anthropic_key);
  EXPECT_EQ(seen[0].headers.find("anthropic-version")->second, "2023-06-01");
  EXPECT_EQ(json::parse(seen[0].body)["max_tokens"], 3);
}

TEST(ProviderRequireLogprobs, ListsTheProvidersThatCan) {
  EXPECT_EQ(providers_with_logprobs(),
            (std::vector<std::string>{"local", "openai", "openai-compatible", "aimlapi", "gemini"}));
}

}  // namespace
}  // namespace bkd

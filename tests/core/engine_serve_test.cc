// The exported student served through the packed engine: a packed GGUF file plus a SentencePiece
// model, loaded as a LocalLanguageModel, generate the same tokens as an independent greedy loop
// over a fresh Engine (full recompute every step, no prefix reuse), and the OpenAI-compatible
// endpoint over loopback returns the same tokens and logprobs as the in-process provider.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/engine/decode_timing.h"
#include "core/engine/engine_language_model.h"
#include "core/engine/gguf_model.h"
#include "core/engine/sampler.h"
#include "core/http/http_client.h"
#include "core/serve/openai_server.h"
#include "core/teacher/local_provider.h"
#include "core/teacher/logprob_math.h"
#include "core/teacher/provider_factory.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "provider_test_settings.h"
#include "test_util.h"

namespace bkd {
namespace {

const char* kTexts[] = {
    "The quick brown fox jumps over the lazy dog while the farmer watches from the gate.",
    "Once upon a time there was a small village by the sea, and every morning the boats went out.",
    "Numbers like 12, 345 and 6789 appear in reports; the committee reviewed them twice.",
    "She said that the weather would change soon, so they packed coats and umbrellas for the trip.",
    "A packed ternary engine reads two bits per weight and adds integer products in wide lanes.",
    "The river ran past the old mill, turning the wheel slowly through the long summer afternoon.",
};

// A random student whose vocabulary is the tokenizer's, exported as the export verb does.
struct Fixture {
  bkd::test::TempDir dir;
  std::string model_path, spm_path;
  int32_t vocab = 0;

  explicit Fixture(QuantMode trained) {
    std::vector<std::string> texts;
    for (int r = 0; r < 8; ++r)
      for (const char* t : kTexts) texts.push_back(t);
    SpmTrainOptions so;
    so.vocab_size = 350;
    spm_path = dir.file("student.model");
    write_file_atomic(spm_path, SpmTokenizer::train(texts, so));
    vocab = SpmTokenizer::load(spm_path)->vocab_size();

    ModelConfig c;
    c.vocab_size = vocab;
    c.d_model = 64;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.ffn_dim = 96;
    c.max_seq_len = 96;
    c.tie_embeddings = true;
    std::mt19937 rng(7);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    auto fill = [&](int64_t n, float s, float m = 0) {
      std::vector<float> v(static_cast<size_t>(n));
      for (auto& x : v) x = m + s * nd(rng);
      return v;
    };
    const int64_t D = c.d_model, F = c.ffn_dim, KV = c.n_kv_heads * c.head_dim();
    FloatModelWeights w;
    w.cfg = c;
    w.embed = fill(vocab * D, 1);
    w.final_norm = fill(D, 0.1f, 1);
    for (int i = 0; i < c.n_layers; ++i)
      w.layers.push_back({fill(D, 0.1f, 1), fill(D * D, 0.05f), fill(KV * D, 0.05f), fill(KV * D, 0.05f), fill(D, 0.1f, 1),
                          fill(D * D, 0.05f), fill(D, 0.1f, 1), fill(F * D, 0.05f), fill(F * D, 0.05f), fill(F, 0.1f, 1),
                          fill(D * F, 0.05f)});
    PackedModel pm = pack_model(w);
    pm.trained_mode = trained;
    model_path = dir.file("student.gguf");
    save_packed_model(pm, model_path);
  }
};

TEST(EngineServe, FileRecordsTheTrainedModeAndTheLoaderUsesIt) {
  Fixture f(QuantMode::TernaryA4);
  EXPECT_EQ(load_packed_model(f.model_path).trained_mode, QuantMode::TernaryA4);
  auto lm = load_engine_language_model(f.model_path, f.spm_path, std::nullopt, 2);
  EXPECT_EQ(lm->engine().mode(), QuantMode::TernaryA4);
  EXPECT_EQ(lm->name(), "student");
  EXPECT_EQ(lm->vocab_size(), f.vocab);
  auto a8 = load_engine_language_model(f.model_path, f.spm_path, QuantMode::TernaryA8, 1);
  EXPECT_EQ(a8->engine().mode(), QuantMode::TernaryA8);
}

TEST(EngineServe, MissingFilesNameThePathAndTheFix) {
  Fixture f(QuantMode::TernaryA8);
  try {
    load_engine_language_model(f.dir.file("nope.gguf"), f.spm_path, std::nullopt, 1);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.gguf"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("bitnet-kde export"), std::string::npos) << e.hint();
  }
  EXPECT_THROW(load_engine_language_model(f.model_path, f.dir.file("nope.model"), std::nullopt, 1), Error);
}

TEST(EngineServe, PrefixReuseGivesTheSameLogitsAsAFreshEngine) {
  Fixture f(QuantMode::TernaryA8);
  auto lm = load_engine_language_model(f.model_path, f.spm_path, std::nullopt, 2);
  const PackedModel pm = load_packed_model(f.model_path);
  auto fresh = [&](const std::vector<int32_t>& ctx) {
    Engine e(pm, EngineOptions{QuantMode::TernaryA8, 1, 0, nullptr});
    std::vector<float> l(static_cast<size_t>(f.vocab));
    e.forward(ctx.data(), static_cast<int64_t>(ctx.size()), l.data());
    return l;
  };
  const std::vector<int32_t> base = lm->tokenizer().encode_ids("Once upon a time there was a small village");
  ASSERT_GE(base.size(), 6u);
  // Grow, repeat, branch off the middle, then start over: each must equal a fresh engine exactly.
  std::vector<std::vector<int32_t>> contexts;
  for (size_t n = 3; n <= base.size(); ++n) contexts.emplace_back(base.begin(), base.begin() + n);
  contexts.push_back(base);
  std::vector<int32_t> branch(base.begin(), base.begin() + 4);
  branch.push_back(base[1]);
  contexts.push_back(branch);
  contexts.push_back({base[2]});
  int64_t reused_total = 0;
  for (const auto& ctx : contexts) {
    EXPECT_EQ(lm->next_logits(ctx), fresh(ctx)) << "context of " << ctx.size();
    reused_total += lm->reused_tokens();
  }
  EXPECT_GT(reused_total, 0);  // the decode loop did reuse the cache
  const auto rows = lm->sequence_logits(base);
  ASSERT_EQ(rows.size(), base.size());
  for (size_t i = 0; i < base.size(); ++i)
    EXPECT_EQ(rows[i], fresh(std::vector<int32_t>(base.begin(), base.begin() + i + 1))) << i;
}

TEST(EngineServe, DecodeTimingRunsTheGreedyContinuationAndTimesEveryStep) {
  Fixture f(QuantMode::TernaryA4);
  const PackedModel pm = load_packed_model(f.model_path);
  const std::vector<int32_t> prompt = {3, 17, 42, 5, 9};
  const DecodeTiming t = measure_decode_tps(pm, prompt, 6, 2);
  EXPECT_EQ(t.mode, QuantMode::TernaryA4);  // the file's mode
  EXPECT_EQ(t.step_s.size(), 6u);
  EXPECT_EQ(t.step_cpu_s.size(), 6u);
  EXPECT_GT(t.decode_tokens_per_s, 0);
  EXPECT_LE(t.ms_per_token_best, t.ms_per_token_median);
  EXPECT_NEAR(t.decode_tokens_per_s, 6.0 / t.decode_s, 1e-9);
  // The same tokens as greedy generation on a fresh engine.
  Engine e(pm, EngineOptions{QuantMode::TernaryA4, 1, 0, nullptr});
  Sampler greedy;
  std::vector<int32_t> want = generate(e, prompt, 7, greedy);
  EXPECT_EQ(t.tokens, want);
  EXPECT_THROW(measure_decode_tps(pm, {}, 4, 1), Error);
  EXPECT_THROW(measure_decode_tps(pm, prompt, pm.cfg.max_seq_len, 1), Error);
}

TEST(EngineServe, OpenAiEndpointServesTheStudentLikeTheInProcessEngine) {
  Fixture f(QuantMode::TernaryA8);
  auto local = std::make_shared<LocalProvider>(
      std::shared_ptr<LocalLanguageModel>(load_engine_language_model(f.model_path, f.spm_path, std::nullopt, 2)));
  const std::string prompt = "The quick brown fox";

  // Independent greedy loop: a fresh Engine over the file, the whole context every step.
  const PackedModel pm = load_packed_model(f.model_path);
  auto tok = SpmTokenizer::load(f.spm_path);
  std::vector<int32_t> ctx = tok->encode_ids(prompt);
  std::vector<int32_t> expected;
  std::vector<double> expected_lp;
  for (int step = 0; step < 12; ++step) {
    Engine e(pm, EngineOptions{QuantMode::TernaryA8, 1, 0, nullptr});
    std::vector<float> l(static_cast<size_t>(f.vocab));
    e.forward(ctx.data(), static_cast<int64_t>(ctx.size()), l.data());
    const int32_t id = argmax(l.data(), f.vocab);
    if (id == tok->eos_id()) break;
    expected.push_back(id);
    expected_lp.push_back(log_softmax(l, 1.0)[id]);
    ctx.push_back(id);
  }
  ASSERT_FALSE(expected.empty());

  GenerateRequest req;
  req.prompt = prompt;
  req.max_tokens = static_cast<int>(expected.size());
  req.top_k = 3;
  req.temperature = 0;
  const Generation in_process = local->generate(req);
  ASSERT_EQ(in_process.tokens.size(), expected.size());
  // The continuation's text is what the generated pieces add after the prompt, spaces included
  // (SentencePiece's "▁and" is " and" there, though decoding the piece alone drops the space).
  std::vector<int32_t> all = tok->encode_ids(prompt);
  const std::string prompt_text = tok->decode(all);
  all.insert(all.end(), expected.begin(), expected.end());
  const std::string continuation = tok->decode(all).substr(prompt_text.size());
  EXPECT_EQ(in_process.text, continuation);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(in_process.tokens[i].id, expected[i]) << i;
    EXPECT_NEAR(in_process.tokens[i].logprob, expected_lp[i], 1e-9) << i;
  }

  ServeOptions so;
  so.max_tokens = 64;
  OpenAiServer server(local, so);
  server.start();
  bkd::test::TempDir dir;
  Settings s = testing::provider_settings(dir, {{"TEACHER_PROVIDER", "openai-compatible"},
                                                {"TEACHER_MODEL", "student"},
                                                {"OPENAI_COMPAT_BASE_URL", server.base_url()}});
  auto remote = make_provider(s);
  const Generation over_http = remote->generate(req);
  ASSERT_EQ(over_http.tokens.size(), in_process.tokens.size());
  EXPECT_EQ(over_http.text, in_process.text);
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(over_http.tokens[i].id, expected[i]) << i;
    EXPECT_NEAR(over_http.tokens[i].logprob, in_process.tokens[i].logprob, 1e-6) << i;
    ASSERT_EQ(over_http.tokens[i].top.size(), 3u);
    EXPECT_EQ(over_http.tokens[i].top[0].id, expected[i]) << i;
  }

  // The raw endpoint, as any OpenAI client sees it.
  HttpOptions ho;
  ho.max_retries = 0;
  HttpClient c(ho);
  HttpRequest r;
  r.method = "POST";
  r.url = server.base_url() + "/chat/completions";
  r.use_cache = false;
  r.body = nlohmann::json{{"model", "student"},
                          {"messages", {{{"role", "user"}, {"content", prompt}}}},
                          {"max_tokens", 4},
                          {"temperature", 0}}
               .dump();
  const HttpResponse resp = c.send(r);
  ASSERT_EQ(resp.status, 200) << resp.body;
  const auto j = nlohmann::json::parse(resp.body);
  EXPECT_EQ(j["model"], "student");
  std::string first4;
  for (size_t i = 0; i < std::min<size_t>(4, in_process.tokens.size()); ++i) first4 += in_process.tokens[i].bytes;
  EXPECT_EQ(j["choices"][0]["message"]["content"].get<std::string>(), first4);
  EXPECT_EQ(continuation.compare(0, first4.size(), first4), 0);
  server.stop();
}

}  // namespace
}  // namespace bkd

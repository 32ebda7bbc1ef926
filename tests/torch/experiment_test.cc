// `bitnet-kde experiment` as a user runs it on the tiny preset: every arm x 3 seeds trains (the arms with
// KD traces of their own collect them first, and the teacher is retrained with its full head), the report
// holds per-arm intervals and paired differences that agree with the runs, arms of one seed share the
// data order and initial weights (kd and a8 are the same run until the flip; ce's CE at step 0 is kd's),
// and a second call reuses the finished runs.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../core/test_util.h"
#include "core/util/fs.h"

namespace bkd {
namespace {
using json = nlohmann::json;

std::vector<json> metrics(const std::string& run) {
  std::vector<json> out;
  std::istringstream in(read_file(run + "/student/metrics.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

TEST(Experiment, ArmsBySeedsWithPairedIntervalsOnOneTokenStream) {
  test::TempDir d;
  test::make_sotu_project(d, 30,
                          "TEACHER_BUDGET_TOKENS=8k\nKD_TARGET_TOKENS=4k\nEVAL_TOKENS=1k\nEXPERIMENT_BUDGET_TOKENS=6k\n"
                          "THREADS=1\nTENSORBOARD=false\nFLIP_AT=0.5\nEXPERIMENT_RSKD_DRAWS=16\n");
  auto pre = test::run_cli(d.path(), "pipeline --until collect");
  ASSERT_EQ(pre.exit_code, 0) << pre.output;
  auto first = test::run_cli(d.path(), "experiment");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("kd_gain:"), std::string::npos) << first.output;
  const json r = json::parse(read_file(d.file("drive/reports/experiment.json")));
  ASSERT_EQ(r["runs"].size(), 30u);
  for (const char* arm : {"kd", "ce", "a8", "fp", "k100", "rskd", "mid", "tok", "tshape", "init"}) {
    const json& a = r["arms"][arm]["bits_per_byte"];
    EXPECT_EQ(a["n"], 3) << arm;
    double sum = 0;
    std::vector<double> v;
    for (const auto& run : r["runs"])
      if (run["arm"] == arm) v.push_back(run["bits_per_byte"].get<double>()), sum += v.back();
    ASSERT_EQ(v.size(), 3u);
    EXPECT_NEAR(a["mean"].get<double>(), sum / 3, 1e-12) << arm;
    EXPECT_LE(a["ci95"][0].get<double>(), a["mean"].get<double>());
    EXPECT_GE(a["ci95"][1].get<double>(), a["mean"].get<double>());
  }
  // kd_gain is CE-only minus KD, paired by seed.
  auto bpb = [&](const std::string& arm, int64_t seed) {
    for (const auto& run : r["runs"])
      if (run["arm"] == arm && run["seed"] == seed) return run["bits_per_byte"].get<double>();
    ADD_FAILURE() << "no run " << arm << " seed " << seed;
    return 0.0;
  };
  double gain = 0;
  for (int64_t seed = 42; seed < 45; ++seed) gain += (bpb("ce", seed) - bpb("kd", seed)) / 3;
  EXPECT_NEAR(r["differences"]["kd_gain"]["bits_per_byte"]["mean"].get<double>(), gain, 1e-12);
  EXPECT_TRUE(r["differences"].contains("flip_cost"));
  EXPECT_TRUE(r["differences"].contains("ternary_cost"));
  EXPECT_TRUE(r["differences"].contains("student_minus_teacher"));
  for (const char* diff : {"k100_gain", "rskd_gain", "mid_token_gain", "same_tokenizer_gain", "init_gain"}) EXPECT_TRUE(r["differences"].contains(diff)) << diff;
  // The arms with traces of their own collected them on the same plan with their one change, and the
  // report says what each stores per position.
  const json& st = r["kd_trace_storage"];
  const json& base = st["pipeline"]["identity"];
  for (const char* arm : {"k100", "rskd", "mid"}) {
    ASSERT_TRUE(st.contains(arm)) << arm;
    EXPECT_EQ(st[arm]["identity"]["plan_hash"], base["plan_hash"]) << arm;
    EXPECT_EQ(st[arm]["rows"], st["pipeline"]["rows"]) << arm;
    EXPECT_GT(st[arm]["bytes_per_position"].get<double>(), 0.0) << arm;
    EXPECT_TRUE(file_exists(st[arm]["manifest"].get<std::string>())) << arm;
  }
  EXPECT_EQ(st["k100"]["identity"]["k_requested"], 100);
  EXPECT_GT(st["k100"]["bytes_per_position"].get<double>(), st["pipeline"]["bytes_per_position"].get<double>());
  EXPECT_EQ(st["rskd"]["identity"]["samples"], 16);
  EXPECT_LT(st["rskd"]["mean_other_mass"].get<double>(), 0.01);  // the draws are the whole estimate
  EXPECT_EQ(st["mid"]["identity"]["projection"], "mid-token");
  EXPECT_GE(st["mid"]["kd_fraction"].get<double>(), st["pipeline"]["kd_fraction"].get<double>());
  // The arms with the teacher's tokenizer: one data folder of their own (prepared there: the pipeline's
  // prepare report still describes the SentencePiece student), traces projected by identity, every
  // row in range at a teacher boundary; the same planned documents, in other tokens.
  const json& tt = st["teacher_tokenizer"];
  EXPECT_EQ(tt["identity"]["projection"], "identity");
  EXPECT_NE(tt["identity"]["student_tokenizer_hash"], base["student_tokenizer_hash"]);
  EXPECT_EQ(tt["no_teacher_boundary_rate"].get<double>(), 0.0);
  const json tt_prepare = json::parse(read_file(d.file("drive/data/experiment_kd/teacher_tokenizer/reports/prepare.json")));
  EXPECT_EQ(tt_prepare["student_tokenizer"]["kind"], "gpt2-bpe");
  EXPECT_EQ(tt_prepare["student_tokenizer"]["vocab_size"], 50257);
  EXPECT_EQ(json::parse(read_file(d.file("drive/reports/prepare.json")))["student_tokenizer"]["kind"], "sentencepiece");
  // init and tshape: the full-head teacher's shape (SubLN on, BitLinear, the whole GPT-2 vocabulary);
  // init starts from its weights, which were trained on this corpus. A drawn start predicts about
  // uniformly (CE ~ ln 50257 = 10.83), and so does a copy that failed or landed on the wrong rows (the
  // trimmed head's shared rows started at 11.46): the teacher's start must be below both.
  const std::string full_head = d.file("drive/checkpoints/experiment/teacher_full_head/teacher/");
  const json teacher_cfg = json::parse(read_file(full_head + list_dir(full_head).back() + "/state.json"))["model_config"];
  EXPECT_TRUE(st.contains("teacher_tokenizer_full_head"));
  for (int64_t seed = 42; seed < 45; ++seed) {
    const std::string base_dir = d.file("drive/checkpoints/experiment/");
    auto state = [&](const std::string& arm) {
      const std::string role = base_dir + arm + "/seed_" + std::to_string(seed) + "/student";
      return json::parse(read_file(role + "/" + list_dir(role).back() + "/state.json"));
    };
    const json init = state("init"), shape = state("tshape");
    EXPECT_EQ(init["init"], "teacher");
    EXPECT_EQ(shape["init"], "teacher-shape");
    EXPECT_EQ(init["model_config"], shape["model_config"]);
    for (const char* k : {"d_model", "n_layers", "n_heads", "ffn_dim", "ffn_activation"})
      EXPECT_EQ(init["model_config"][k], teacher_cfg[k]) << k;
    EXPECT_EQ(init["model_config"]["vocab_size"], 50257);
    EXPECT_TRUE(init["model_config"]["bitlinear"].get<bool>());
    const double ce_init = metrics(base_dir + "init/seed_" + std::to_string(seed))[0]["ce"].get<double>();
    const double ce_drawn = metrics(base_dir + "tshape/seed_" + std::to_string(seed))[0]["ce"].get<double>();
    std::printf("[init from teacher] seed %lld: step-0 CE %.3f started from the teacher, %.3f drawn\n", (long long)seed,
                ce_init, ce_drawn);
    EXPECT_LT(ce_init, ce_drawn) << seed;
    EXPECT_LT(ce_init, std::log(50257.0)) << seed;
  }

  // The teacher retrained with its full head is a line of its own, and the trimmed head's cost the difference.
  ASSERT_TRUE(r["teacher_full_head_bits_per_byte"].is_number());
  EXPECT_NEAR(r["trimmed_head_cost_bits_per_byte"].get<double>(),
              r["teacher_bits_per_byte"].get<double>() - r["teacher_full_head_bits_per_byte"].get<double>(), 1e-12);
  EXPECT_NE(first.output.find("retrained with its full head"), std::string::npos) << first.output;
  EXPECT_TRUE(file_exists(d.file("drive/reports/experiment.html")));
  EXPECT_NE(read_file(d.file("drive/reports/experiment.html")).find("<svg"), std::string::npos);

  // One token stream and one initialization per seed: kd and a8 are the same run until kd flips;
  // ce sees the same first batch with the same weights (its CE term equals kd's at step 0).
  for (int64_t seed = 42; seed < 45; ++seed) {
    const std::string base = d.file("drive/checkpoints/experiment/");
    const auto kd = metrics(base + "kd/seed_" + std::to_string(seed));
    const auto a8 = metrics(base + "a8/seed_" + std::to_string(seed));
    const auto ce = metrics(base + "ce/seed_" + std::to_string(seed));
    ASSERT_EQ(kd.size(), a8.size());
    size_t same = 0;
    for (size_t i = 0; i < kd.size() && kd[i]["mode"] == "a8"; ++i, ++same)
      EXPECT_EQ(kd[i]["loss"].get<double>(), a8[i]["loss"].get<double>()) << "seed " << seed << " step " << i;
    EXPECT_GT(same, 1u);
    EXPECT_LT(same, kd.size());  // kd flipped, a8 did not
    EXPECT_EQ(a8.back()["mode"], "a8");
    EXPECT_EQ(kd[0]["ce"].get<double>(), ce[0]["ce"].get<double>()) << seed;
    EXPECT_NE(kd[0]["loss"].get<double>(), ce[0]["loss"].get<double>()) << seed;  // ce has no KL term
  }
  // Different seeds: different data order or weights.
  EXPECT_NE(metrics(d.file("drive/checkpoints/experiment/kd/seed_42"))[0]["loss"].get<double>(),
            metrics(d.file("drive/checkpoints/experiment/kd/seed_43"))[0]["loss"].get<double>());

  // A second call trains nothing and reports the same numbers.
  auto second = test::run_cli(d.path(), "experiment");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_EQ(second.output.find(" parameters, mode "), std::string::npos) << second.output;  // the trainer never started
  const json r2 = json::parse(read_file(d.file("drive/reports/experiment.json")));
  EXPECT_EQ(r2["arms"], r["arms"]);
}

TEST(Experiment, UnknownArmIsAClearError) {
  test::TempDir d;
  test::make_sotu_project(d, 5, "EXPERIMENT_ARMS=kd,distill\n");
  auto r = test::run_cli(d.path(), "experiment");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("unknown arm 'distill'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace bkd

// `bitnet-kde pipeline` as a user runs it, end to end on a small slice of the default corpus with the
// tiny preset: every stage runs, eval writes its report and report.html, the exit-criteria table
// matches the files, a second run skips the report stages whose outputs are current, and the student
// exports for llama.cpp and Hugging Face from the CLI.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "../core/test_util.h"
#include "core/util/fs.h"

namespace bkd {
namespace {
using json = nlohmann::json;

void make_project(const test::TempDir& d, int n) {
  test::make_sotu_project(d, n,
                          "TEACHER_BUDGET_TOKENS=8k\nBUDGET_TOKENS=8k\nKD_TARGET_TOKENS=4k\nEVAL_TOKENS=1k\n"
                          "BASELINE_PROMPTS=2\nMAX_NEW_TOKENS=8\nTHREADS=2\n");
}

json load(const std::string& path) { return json::parse(read_file(path)); }

TEST(Pipeline, RunsEveryStageReportsTheCriteriaAndSkipsCurrentReportsTheSecondTime) {
  test::TempDir d;
  make_project(d, 30);
  const auto first = test::run_cli(d.path(), "pipeline");
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("Seed v0 exit criteria"), std::string::npos);

  const std::string reports = d.file("drive/reports");
  const json p = load(reports + "/pipeline.json");
  EXPECT_TRUE(p["completed"].get<bool>());
  for (const auto& st : p["stages"]) EXPECT_EQ(st["status"], "ran") << st.dump();
  EXPECT_EQ(p["stages"].size(), 9u);
  ASSERT_EQ(p["criteria_total"].get<int>(), 13);  // the local teacher gives measured-quality QEI too

  // The evaluation: every model scored on the same held-out bytes, finite and sane.
  const json ev = load(reports + "/mini_evaluation_report.json");
  const double bt = ev["teacher"]["quality"]["bits_per_byte"], bs = ev["student"]["quality"]["bits_per_byte"];
  const double bc = ev["ablation_ce_only"]["quality"]["bits_per_byte"];
  for (double b : {bt, bs, bc}) EXPECT_TRUE(std::isfinite(b) && b > 0 && b < 16) << b;
  EXPECT_EQ(ev["teacher"]["quality"]["bytes"], ev["student"]["quality"]["bytes"]);
  EXPECT_EQ(ev["student"]["quality"]["bytes"], ev["ablation_ce_only"]["quality"]["bytes"]);
  EXPECT_NEAR(ev["ablation_ce_only"]["kd_gain_bits_per_byte"].get<double>(), bc - bs, 1e-9);
  EXPECT_GT(ev["student"]["agreement"]["kd_positions"].get<int64_t>(), 0);
  EXPECT_GT(ev["student"]["decode"]["trained_mode"]["decode_tokens_per_s"].get<double>(), 0);
  EXPECT_EQ(ev["student"]["mode"], "a4");  // flipped during training
  EXPECT_TRUE(ev["flip_cost"].is_object());
  const json& q = ev["qei"]["placeholder"];
  EXPECT_NEAR(q["qei"].get<double>(), 0.75 / q["memory_ratio"].get<double>(), 1e-9);
  EXPECT_NEAR(q["qei_speed"].get<double>(), q["qei"].get<double>() * q["tps_ratio"].get<double>(), 1e-9);
  EXPECT_NEAR(ev["qei"]["measured"]["quality_ratio"].get<double>(), bt / bs, 1e-9);
  // The local teacher's decode is timed in eval the way the student's is, and QEIspeed divides by it.
  const double tps_t = ev["teacher"]["decode"]["decode_tokens_per_s"].get<double>();
  EXPECT_GT(tps_t, 0);
  EXPECT_EQ(ev["teacher"]["decode_tokens_per_s"].get<double>(), tps_t);
  EXPECT_GT(ev["teacher"]["baseline_decode_tokens_per_s"].get<double>(), 0);
  EXPECT_NEAR(q["tps_ratio"].get<double>(),
              ev["student"]["decode"]["trained_mode"]["decode_tokens_per_s"].get<double>() / tps_t, 1e-9);
  // QEIspeed in bytes per second: each model's rate times its own bytes per token on the same text.
  const double bpt_s = ev["student"]["quality"]["bytes"].get<double>() / ev["student"]["quality"]["tokens"].get<double>();
  const double bpt_t = ev["teacher"]["quality"]["bytes"].get<double>() / ev["teacher"]["quality"]["tokens"].get<double>();
  EXPECT_NEAR(ev["student"]["bytes_per_token"].get<double>(), bpt_s, 1e-9);
  EXPECT_NEAR(q["bytes_per_s_ratio"].get<double>(), q["tps_ratio"].get<double>() * bpt_s / bpt_t, 1e-9);
  EXPECT_NEAR(q["qei_speed_bytes"].get<double>(), q["qei"].get<double>() * q["bytes_per_s_ratio"].get<double>(), 1e-9);

  // The criteria table agrees with the files it reads.
  const json man = load(d.file("drive/data/kd_manifest.json"));
  bool saw_rows = false;
  for (const auto& c : p["criteria"]) {
    if (c["milestone"] == "M0" || c["milestone"] == "M1") EXPECT_TRUE(c["pass"].get<bool>()) << c.dump();
    if (c["criterion"].get<std::string>().find("500k") != std::string::npos) {
      EXPECT_EQ(c["figure"], std::to_string(man["shards"][0]["rows"].get<int64_t>()) + " rows");
      EXPECT_FALSE(c["pass"].get<bool>());  // a 4k-token test run is far below the seed's shard size
      saw_rows = true;
    }
  }
  EXPECT_TRUE(saw_rows);
  const std::string html = read_file(reports + "/report.html");
  EXPECT_NE(html.find("student loss terms"), std::string::npos);
  EXPECT_NE(html.find("A8→A4 flip"), std::string::npos);
  EXPECT_NE(html.find("CE only (ablation)"), std::string::npos);

  // Second run: training stages find their work finished, report stages are current.
  const auto second = test::run_cli(d.path(), "pipeline");
  ASSERT_EQ(second.exit_code, 0) << second.output;
  const json p2 = load(reports + "/pipeline.json");
  int current = 0;
  for (const auto& st : p2["stages"]) current += st["status"] == "current";
  EXPECT_EQ(current, 3) << p2["stages"].dump();  // teacher baseline, eval, 7B dry-run
  EXPECT_NE(second.output.find("already finished"), std::string::npos);

  // The pipeline's student leaves the project: llama.cpp's GGUF (d_model 64 is not a multiple of 256,
  // so every projection is exact Q4_0, said out loud; refused when Q4_0 rows are not allowed) and the
  // Hugging Face folder, which export reads back to bit-identical engine logits.
  const auto strict = test::run_cli(d.path(), "export --format llama.cpp --no-q4-rows");
  EXPECT_EQ(strict.exit_code, 2) << strict.output;
  EXPECT_NE(strict.output.find("not a multiple of 256"), std::string::npos) << strict.output;
  EXPECT_FALSE(file_exists(d.file("drive/checkpoints/student-llama.cpp.gguf")));
  const auto llama = test::run_cli(d.path(), "export --format llama.cpp");
  ASSERT_EQ(llama.exit_code, 0) << llama.output;
  EXPECT_NE(llama.output.find("exact Q4_0"), std::string::npos) << llama.output;
  EXPECT_TRUE(file_exists(d.file("drive/checkpoints/student-llama.cpp.gguf")));
  const auto hf = test::run_cli(d.path(), "export --format hf");
  ASSERT_EQ(hf.exit_code, 0) << hf.output;
  EXPECT_NE(hf.output.find("bit-identical"), std::string::npos) << hf.output;
  EXPECT_TRUE(file_exists(d.file("drive/checkpoints/student-hf/model.safetensors")));
}

TEST(Pipeline, StopsAtAFailingStageAndSaysHowToGoOn) {
  test::TempDir d;
  make_project(d, 30);
  std::string env = read_file(d.file(".env"));
  env.replace(env.find("CORPUS_DIR=") + 11, d.file("corpus").size(), d.file("no-such-corpus"));
  write_file_atomic(d.file(".env"), env);
  const auto r = test::run_cli(d.path(), "pipeline");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("stopped at a failed stage"), std::string::npos) << r.output;
  const json p = load(d.file("drive/reports/pipeline.json"));
  EXPECT_FALSE(p["completed"].get<bool>());
  EXPECT_EQ(p["stages"].back()["stage"], "prepare");
  EXPECT_EQ(p["stages"].back()["status"], "failed");
}

}  // namespace
}  // namespace bkd

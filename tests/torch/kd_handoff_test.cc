// The collect -> train handoff through the KD manifest: a student trains on exactly the rows the
// manifest names (every worker's, once merged; never a stale shard left in the folder), and refuses a
// manifest that is missing, unmerged, incomplete or made for another run.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "../core/provider_test_model.h"
#include "../core/test_util.h"
#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/kd/kd_manifest.h"
#include "core/stages/collect.h"
#include "core/stages/prepare.h"
#include "core/teacher/local_provider.h"
#include "core/util/fs.h"
#include "core/util/json_file.h"
#include "torch/stages/train.h"

namespace bkd {
namespace {
using json = nlohmann::json;

// A prepared tiny project whose teacher is the bigram test model (the real `local` provider over it),
// with a short student budget: the KD rows are what is under test, not the training.
struct Project {
  test::TempDir dir;
  Settings settings(std::map<std::string, std::string> extra = {}) const {
    LoadOptions o;
    o.env_file = dir.file(".env");
    o.presets_dir = test::repo_root() + "/configs";
    o.use_process_env = false;
    o.overrides = {{"TEACHER_PROVIDER", "local"}, {"TEACHER_MODEL", "bigram-test"}, {"KD_TARGET_TOKENS", "4000"},
                   {"KD_SHARD_ROWS", "1000"},     {"BUDGET_TOKENS", "2048"},        {"CKPT_EVERY", "100"},
                   {"TENSORBOARD", "false"},      {"THREADS", "1"},                 {"TOP_K", "5"}};
    for (auto& [k, v] : extra) o.overrides[k] = v;
    return Settings::load(o);
  }
  Project() {
    test::make_sotu_project(dir, 12);
    run_prepare(settings());
  }
  json collect(const Settings& s, int worker, int workers, bool restart = false) const {
    LocalProvider provider(std::make_shared<bkd::testing::BigramModel>());
    CollectOptions o;
    o.provider = &provider;
    o.worker = worker;
    o.workers = workers;
    o.restart = restart;
    return run_collect(s, o);
  }
};

Project& project() {
  static Project p;  // prepared once for the suite
  return p;
}

void remove_kd_files(const Settings& s) {
  const RunLayout layout(s);
  for (const auto& name : list_dir(layout.data()))
    if (name.rfind("kd_", 0) == 0) std::remove(join_path(layout.data(), name).c_str());
  std::system(("rm -rf '" + layout.role_checkpoints("student") + "'").c_str());
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(KdHandoff, TrainingReadsTheRowsOfEveryMergedWorker) {
  const Settings s = project().settings();
  remove_kd_files(s);
  const json w0 = project().collect(s, 0, 2), w1 = project().collect(s, 1, 2);
  const int64_t rows0 = w0["rows"].get<int64_t>(), rows1 = w1["rows"].get<int64_t>();
  ASSERT_GT(rows0, 0);
  ASSERT_GT(rows1, 0);
  // Collected in parts, not merged: training says how to merge instead of training without KD.
  const std::string unmerged = error_of([&] { run_train_stage(s); });
  EXPECT_NE(unmerged.find("no merged KD manifest"), std::string::npos) << unmerged;
  EXPECT_NE(unmerged.find("manifests of 2 workers exist"), std::string::npos) << unmerged;

  CollectOptions merge;
  merge.merge = true;
  merge.workers = 2;
  run_collect(s, merge);
  const TrainStageResult r = run_train_stage(s);
  EXPECT_EQ(r.kd_rows_read, rows0 + rows1);  // both workers' rows, each once
  EXPECT_EQ(r.kd_shards_read, static_cast<int64_t>(w0["manifest"]["shards"].size() + w1["manifest"]["shards"].size()));
  EXPECT_TRUE(r.train.finished);
}

TEST(KdHandoff, StaleShardsInTheFolderAreNotRead) {
  const Settings s = project().settings();
  remove_kd_files(s);
  const json c = project().collect(s, 0, 1);
  const KdTraceDir kd = RunLayout(s).kd_traces();
  // Shards a longer earlier run left behind: same names as collect writes, not in the manifest.
  const int n = static_cast<int>(c["manifest"]["shards"].size());
  for (int i = n; i < n + 3; ++i) write_file_atomic(kd.shard(0, 1, i), read_file(kd.shard(0, 1, 0)));
  const TrainStageResult r = run_train_stage(s);
  EXPECT_EQ(r.kd_rows_read, c["rows"].get<int64_t>());
  EXPECT_EQ(r.kd_shards_read, n);
}

// What changes after training is noticed: a worker that collected again after the merge (the merged
// manifest no longer describes its shards), a finished student whose traces were collected again, a
// finished student whose manifest is gone.
TEST(KdHandoff, CheckpointsAndMergedManifestsFollowTheTraces) {
  const Settings s = project().settings();
  remove_kd_files(s);
  project().collect(s, 0, 2);
  project().collect(s, 1, 2);
  CollectOptions merge;
  merge.merge = true;
  merge.workers = 2;
  run_collect(s, merge);
  ASSERT_TRUE(run_train_stage(s).train.finished);
  // Worker 1 collects again with another K; the merged manifest still says K = 5.
  const Settings k4 = project().settings({{"TOP_K", "4"}});
  project().collect(k4, 1, 2, true);
  const std::string stale = error_of([&] { run_train_stage(s); });
  EXPECT_NE(stale.find("holds K 4 (the manifest says 5)"), std::string::npos) << stale;
  // Both workers with K = 4, merged: the manifest now fits a K = 4 run, but the finished student was
  // trained on the K = 5 traces.
  project().collect(k4, 0, 2, true);
  run_collect(k4, merge);
  const std::string other = error_of([&] { run_train_stage(k4); });
  EXPECT_NE(other.find("were trained on other KD traces"), std::string::npos) << other;
  // A finished student whose manifest is gone is not "already finished".
  std::remove(RunLayout(s).kd_traces().manifest().c_str());
  EXPECT_NE(error_of([&] { run_train_stage(k4); }).find("no merged KD manifest"), std::string::npos);
}

TEST(KdHandoff, RefusesAManifestThatIsMissingIncompleteOrForAnotherRun) {
  const Settings s = project().settings();
  remove_kd_files(s);
  EXPECT_NE(error_of([&] { run_train_stage(s); }).find("no KD manifest"), std::string::npos);

  project().collect(s, 0, 1);
  const KdTraceDir kd = RunLayout(s).kd_traces();
  const json good = json::parse(read_file(kd.manifest()));
  auto with = [&](const std::function<void(json&)>& edit) {
    json m = good;
    edit(m);
    write_json_atomic(kd.manifest(), m);
  };
  with([](json& m) { m["complete"] = false; });
  EXPECT_NE(error_of([&] { run_train_stage(s); }).find("is not complete"), std::string::npos);
  with([](json& m) { m["student_tokenizer_hash"] = "another"; });
  EXPECT_NE(error_of([&] { run_train_stage(s); }).find("student tokenizer hash"), std::string::npos);
  with([](json& m) { m["plan_hash"] = "another"; });
  EXPECT_NE(error_of([&] { run_train_stage(s); }).find("planned sequences differ"), std::string::npos);
  with([](json& m) { m["shards"][0]["file"] = "../elsewhere.parquet"; });
  EXPECT_NE(error_of([&] { run_train_stage(s); }).find("not a file in that folder"), std::string::npos);
  with([](json&) {});
  // The same manifest, a run that wants another K or another teacher model.
  EXPECT_NE(error_of([&] { run_train_stage(project().settings({{"TOP_K", "4"}})); }).find("K (TOP_K)"), std::string::npos);
  EXPECT_NE(error_of([&] { run_train_stage(project().settings({{"TEACHER_MODEL", "other"}})); }).find("teacher model"),
            std::string::npos);
  EXPECT_NE(error_of([&] { run_train_stage(project().settings({{"KD_TARGET_TOKENS", "3000"}})); }).find("planned sequences"),
            std::string::npos);
  // Top-K traces for a run that wants sampled ones.
  EXPECT_NE(error_of([&] { run_train_stage(project().settings({{"KD_SAMPLES", "16"}})); }).find("KD_SAMPLES"),
            std::string::npos);
}

// Sampled traces estimate the teacher at temperature 1: tempering their frequencies as atoms is not the
// tempered teacher, so a tempered run refuses them and says what to do; at T = 1 they train.
TEST(KdHandoff, SampledTracesTrainAtTemperatureOneAndRefuseAnother) {
  const Settings s = project().settings({{"KD_SAMPLES", "16"}});
  remove_kd_files(s);
  project().collect(s, 0, 1);
  const std::string err = error_of([&] { run_train_stage(project().settings({{"KD_SAMPLES", "16"}, {"KD_TEMPERATURE", "2"}})); });
  EXPECT_NE(err.find("KD_TEMPERATURE=2"), std::string::npos) << err;
  EXPECT_NE(err.find("temperature 1"), std::string::npos) << err;
  EXPECT_EQ(error_of([&] { run_train_stage(s); }), "");
  remove_kd_files(s);
}

}  // namespace
}  // namespace bkd

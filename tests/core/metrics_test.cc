// Metric sinks: TensorBoard event files checked by an independent reader (tests/tools/tfevents_reader.py:
// its own CRC-32C, verified against RFC 3720 vectors, and its own protobuf wire decoder), and the W&B
// sink run against a fake `wandb` executable that records its arguments and environment.
#include <map>
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/config/settings.h"
#include "core/metrics/crc32c.h"
#include "core/metrics/metric_sinks.h"
#include "core/metrics/tensorboard.h"
#include "core/metrics/wandb.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "test_util.h"

namespace bkd {
namespace {

using test::TempDir;

std::string quote(const std::string& s) { return "'" + s + "'"; }

// Decodes an event file with the independent reader; fails the test on any error.
nlohmann::json read_events(const std::string& path) {
  auto r = test::run_command("python3 " + quote(std::string(BKD_TEST_TOOLS_DIR) + "/tfevents_reader.py") + " " +
                             quote(path));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (r.exit_code != 0) return {};
  return nlohmann::json::parse(r.output);
}

std::string only_event_file(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& n : list_dir(dir))
    if (n.rfind("events.out.tfevents.", 0) == 0) found.push_back(join_path(dir, n));
  EXPECT_EQ(found.size(), 1u) << dir;
  return found.empty() ? std::string() : found[0];
}

Settings settings_for(const TempDir& dir, std::map<std::string, std::string> overrides) {
  LoadOptions o;
  o.use_process_env = false;
  o.env_file = dir.file("empty.env");
  write_file_atomic(o.env_file, "");
  o.presets_dir = test::repo_root() + "/configs";
  o.overrides = std::move(overrides);
  o.overrides["DRIVE_ROOT"] = dir.file("run");
  return Settings::load(o);
}

// Sets an environment variable for the scope of a test.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { had_ ? (void)::setenv(name_, old_.c_str(), 1) : (void)::unsetenv(name_); }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};

TEST(Crc32c, PublishedVectors) {
  // RFC 3720 appendix B.4 and the usual "123456789" check value.
  std::string zeros(32, '\0'), ones(32, '\xff'), inc(32, 0), dec(32, 0);
  for (int i = 0; i < 32; ++i) inc[size_t(i)] = char(i), dec[size_t(i)] = char(31 - i);
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
  EXPECT_EQ(crc32c(inc), 0x46DD794Eu);
  EXPECT_EQ(crc32c(dec), 0x113FDB5Cu);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  // Extending a CRC equals the CRC of the concatenation; odd lengths cross the 4-byte loop.
  EXPECT_EQ(crc32c("6789", 4, crc32c("12345")), 0xE3069283u);
}

TEST(TensorBoard, FramingMatchesTheFormat) {
  const std::string data = "abc";
  const std::string rec = tfrecord_frame(data);
  ASSERT_EQ(rec.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(rec.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(rec.substr(12, 3), data);
}

TEST(TensorBoard, IndependentReaderDecodesScalarsAndRestarts) {
  TempDir dir;
  std::string path;
  const double t0 = wall_time_now();
  {
    TensorBoardWriter w(dir.file("tb/student"));
    path = w.path();
    w.add_scalars(0, {{"train/loss", 7.25}, {"train/lr", 1.5e-3}});
    w.add_scalars(1, {{"train/loss", 6.5}, {"train/grad_norm_pre", 123456.789}});
    w.session_start(1);
    w.add_scalars(300000000000LL, {{"train/loss", -0.125}});  // a step past 32 bits
    w.close();
  }
  EXPECT_NE(path.find("/tb/student/events.out.tfevents."), std::string::npos) << path;
  nlohmann::json j = read_events(path);
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["file_version"], "brain.Event:2");
  EXPECT_EQ(j["records"], 5);
  const auto& ev = j["events"];
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0]["step"], 0);
  EXPECT_EQ(ev[0]["scalars"]["train/loss"], 7.25);
  EXPECT_EQ(ev[0]["scalars"]["train/lr"].get<double>(), double(float(1.5e-3)));  // simple_value is float32
  EXPECT_EQ(ev[1]["step"], 1);
  EXPECT_EQ(ev[1]["scalars"]["train/grad_norm_pre"].get<double>(), double(float(123456.789)));
  EXPECT_EQ(ev[2]["session_status"], 1);  // SessionLog START
  EXPECT_EQ(ev[2]["step"], 1);
  EXPECT_TRUE(ev[2]["scalars"].empty());
  EXPECT_EQ(ev[3]["step"], 300000000000LL);
  EXPECT_EQ(ev[3]["scalars"]["train/loss"], -0.125);
  for (const auto& e : ev) {
    EXPECT_GE(e["wall_time"].get<double>(), t0 - 1);
    EXPECT_LE(e["wall_time"].get<double>(), wall_time_now() + 1);
  }
}

TEST(TensorBoard, ReaderRejectsACorruptedFile) {
  // The reader must catch a flipped bit, or the test above proves nothing about the checksums.
  TempDir dir;
  TensorBoardWriter w(dir.file("tb"));
  w.add_scalars(3, {{"train/loss", 1.0}});
  w.close();
  std::string bytes = read_file(w.path());
  bytes[bytes.size() - 6] ^= 0x01;  // inside the last record's data
  write_file_atomic(dir.file("bad.tfevents"), bytes);
  auto r = test::run_command("python3 " + quote(std::string(BKD_TEST_TOOLS_DIR) + "/tfevents_reader.py") + " " +
                             quote(dir.file("bad.tfevents")));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("data checksum mismatch"), std::string::npos) << r.output;
  auto self = test::run_command("python3 " + quote(std::string(BKD_TEST_TOOLS_DIR) + "/tfevents_reader.py") +
                                " --self-test");
  EXPECT_EQ(self.exit_code, 0) << self.output;
}

TEST(TensorBoard, UnwritableDirectoryIsAClearError) {
  TempDir dir;
  write_file_atomic(dir.file("file"), "x");
  try {
    TensorBoardWriter w(dir.file("file/sub"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("file/sub")), std::string::npos) << e.what();
  }
}

TEST(MetricSinks, TrainingRecordsBecomeScalarsUnderTbDir) {
  TempDir dir;
  Settings s = settings_for(dir, {{"WANDB_DISABLED", "true"}});
  EXPECT_EQ(s.str("TB_DIR"), dir.file("run") + "/logs/tensorboard");
  {
    MetricSinks sinks(&s, "student", 0);
    ASSERT_TRUE(sinks.active());
    sinks.log(0, {{"step", 0}, {"loss", 5.5}, {"skipped", false}, {"mode", "ternary_a8"}, {"kd", 2.0}});
    sinks.log(1, {{"step", 1}, {"loss", 5.0}, {"skipped", true}, {"mode", "ternary_a4"}});
  }
  nlohmann::json j = read_events(only_event_file(s.str("TB_DIR") + "/student"));
  ASSERT_FALSE(j.is_null());
  const auto& ev = j["events"];
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0]["session_status"], 1);  // a fresh run replaces whatever the folder held
  EXPECT_EQ(ev[0]["step"], 0);
  EXPECT_EQ(ev[1]["scalars"], (nlohmann::json{{"train/loss", 5.5}, {"train/skipped", 0.0}, {"train/kd", 2.0}}));
  EXPECT_EQ(ev[2]["step"], 1);
  EXPECT_EQ(ev[2]["scalars"], (nlohmann::json{{"train/loss", 5.0}, {"train/skipped", 1.0}}));
}

TEST(MetricSinks, ResumedRunStartsItsFileAtTheResumeStep) {
  TempDir dir;
  Settings s = settings_for(dir, {});
  MetricSinks sinks(&s, "teacher", 40);
  sinks.log(40, {{"loss", 1.0}});
  sinks.close();
  nlohmann::json j = read_events(sinks.event_file());
  ASSERT_EQ(j["events"].size(), 2u);
  EXPECT_EQ(j["events"][0]["session_status"], 1);
  EXPECT_EQ(j["events"][0]["step"], 40);
}

// A run killed after step 9 (its file ends in a torn record) and resumed at step 6: the steps 6..9 the
// first file logged are dropped from it, so every step is on disk once (read by the independent
// Python reader), and nothing is lost before the resume point.
TEST(MetricSinks, ResumeDropsTheStepsItLogsAgainFromEarlierFiles) {
  TempDir dir;
  Settings s = settings_for(dir, {});
  std::string first;
  {
    MetricSinks sinks(&s, "student", 0);
    for (int step = 0; step < 10; ++step) sinks.log(step, {{"loss", 10.0 - step}});
    first = sinks.event_file();
    sinks.close();
  }
  {  // the kill: half a record at the end
    std::FILE* f = std::fopen(first.c_str(), "ab");
    std::fwrite("\x40\x00\x00\x00\x00", 1, 5, f);
    std::fclose(f);
  }
  MetricSinks resumed(&s, "student", 6);
  for (int step = 6; step < 12; ++step) resumed.log(step, {{"loss", 1.0}});
  resumed.close();
  std::map<int64_t, int> scalar_steps;
  for (const auto& name : list_dir(s.str("TB_DIR") + "/student")) {
    const nlohmann::json j = read_events(join_path(s.str("TB_DIR") + "/student", name));
    for (const auto& e : j["events"])
      if (e.contains("scalars") && !e["scalars"].empty()) ++scalar_steps[e["step"].get<int64_t>()];
  }
  ASSERT_EQ(scalar_steps.size(), 12u);
  for (const auto& [step, n] : scalar_steps) EXPECT_EQ(n, 1) << "step " << step << " is on disk " << n << " times";
  EXPECT_EQ(tfevents_steps(first).back(), 5);  // the earlier file now ends before the resume point
}

TEST(MetricSinks, TensorboardOffWritesNothing) {
  TempDir dir;
  Settings s = settings_for(dir, {{"TENSORBOARD", "0"}});
  MetricSinks sinks(&s, "student", 0);
  EXPECT_FALSE(sinks.active());
  sinks.log(0, {{"loss", 1.0}});
  sinks.close();
  EXPECT_FALSE(dir_exists(s.str("TB_DIR")));
  MetricSinks none;  // no settings (trainer unit tests): nothing at all
  none.log(0, {{"loss", 1.0}});
  EXPECT_FALSE(none.active());
}

// ---- W&B -----------------------------------------------------------------------------------------

// A fake `wandb` that records its argv (one per line) and the key it saw, and prints the key (the
// log must show it redacted).
void write_fake_wandb(const std::string& bin_dir, int exit_code = 0) {
  ensure_dir(bin_dir);
  const std::string script = bin_dir + "/wandb";
  write_file_atomic(script,
                    "#!/bin/sh\n"
                    "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > \"$FAKE_WANDB_OUT/argv\"\n"
                    "printf '%s' \"$WANDB_API_KEY\" > \"$FAKE_WANDB_OUT/key\"\n"
                    "echo \"syncing with key $WANDB_API_KEY\"\n"
                    "exit " + std::to_string(exit_code) + "\n");
  ::chmod(script.c_str(), 0755);
}

TEST(Wandb, SkipPathsSayWhy) {
  TempDir dir;
  write_fake_wandb(dir.file("bin"));
  const std::string key = std::string("wb-") + "fake-0123456789abcdef";
  {
    Settings s = settings_for(dir, {{"WANDB_DISABLED", "true"}, {"WANDB_API_KEY", key}});
    WandbStatus st = wandb_status(s, dir.file("bin"));
    EXPECT_FALSE(st.enabled);
    EXPECT_NE(st.reason.find("WANDB_DISABLED"), std::string::npos);
  }
  {
    Settings s = settings_for(dir, {{"WANDB_DISABLED", "false"}});
    WandbStatus st = wandb_status(s, dir.file("bin"));
    EXPECT_FALSE(st.enabled);
    EXPECT_NE(st.reason.find("WANDB_API_KEY"), std::string::npos);
  }
  {
    Settings s = settings_for(dir, {{"WANDB_DISABLED", "false"}, {"WANDB_API_KEY", key}});
    WandbStatus st = wandb_status(s, dir.file("empty-bin") + ":" + dir.file("nope"));
    EXPECT_FALSE(st.enabled);
    EXPECT_NE(st.reason.find("PATH"), std::string::npos);
    EXPECT_TRUE(st.api_key.empty());
    WandbStatus ok = wandb_status(s, dir.file("empty-bin") + ":" + dir.file("bin"));
    EXPECT_TRUE(ok.enabled);
    EXPECT_EQ(ok.executable, dir.file("bin") + "/wandb");
  }
}

TEST(Wandb, SinkSyncsTheRunFolderWithTheKeyOnlyInTheEnvironment) {
  TempDir dir;
  write_fake_wandb(dir.file("bin"));
  ensure_dir(dir.file("out"));
  const std::string key = std::string("wb-") + "fake-0123456789abcdef";
  ScopedEnv path("PATH", dir.file("bin") + ":" + (std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin"));
  ScopedEnv out("FAKE_WANDB_OUT", dir.file("out"));
  ScopedEnv stale("WANDB_API_KEY", "stale-value-from-the-shell");  // the configured key wins
  Settings s = settings_for(dir, {{"WANDB_DISABLED", "false"}, {"WANDB_API_KEY", key},
                                  {"WANDB_PROJECT", "kd-proj"}, {"TENSORBOARD", "0"}});
  log_set_file(dir.file("log.txt"));
  std::string run_dir;
  {
    MetricSinks sinks(&s, "student", 0);
    ASSERT_TRUE(sinks.active());  // W&B needs the event files even with TENSORBOARD=0
    run_dir = sinks.run_dir();
    sinks.log(0, {{"loss", 2.0}});
    EXPECT_FALSE(file_exists(dir.file("out/argv")));  // nothing uploaded before the run ends
  }
  log_set_file("");
  ASSERT_TRUE(file_exists(dir.file("out/argv")));
  const std::string argv = read_file(dir.file("out/argv"));
  EXPECT_EQ(argv, "sync\n--sync-tensorboard\n--project\nkd-proj\n" + run_dir + "\n");
  EXPECT_EQ(argv.find(key), std::string::npos);
  EXPECT_EQ(read_file(dir.file("out/key")), key);
  const std::string log = read_file(dir.file("log.txt"));
  EXPECT_EQ(log.find(key), std::string::npos) << log;
  EXPECT_NE(log.find("W&B: syncing with key"), std::string::npos) << log;
  EXPECT_EQ(read_events(only_event_file(run_dir))["events"][1]["scalars"]["train/loss"], 2.0);
}

TEST(Wandb, FailedUploadIsAWarningNotAnError) {
  TempDir dir;
  write_fake_wandb(dir.file("bin"), 3);
  ensure_dir(dir.file("out"));
  ScopedEnv out("FAKE_WANDB_OUT", dir.file("out"));
  Settings s = settings_for(dir, {{"WANDB_DISABLED", "false"}, {"WANDB_API_KEY", std::string("wb-") + "fake-key-77"}});
  WandbStatus st = wandb_status(s, dir.file("bin"));
  ASSERT_TRUE(st.enabled);
  ensure_dir(dir.file("tb"));
  WandbSyncResult r = wandb_sync(st, dir.file("tb"));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.argv.back(), dir.file("tb"));
}

}  // namespace
}  // namespace bkd

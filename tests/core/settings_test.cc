#include "core/config/settings.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/util/fs.h"
#include "core/util/log.h"
#include "test_util.h"

using namespace bkd;
using bkd::test::TempDir;

namespace {

LoadOptions opts_for(const TempDir& dir, std::map<std::string, std::string> env = {{"HOME", "/home/u"}}) {
  LoadOptions o;
  o.env_file = dir.file(".env");
  o.presets_dir = test::repo_root() + "/configs";
  o.use_process_env = false;
  o.env = std::move(env);
  return o;
}

void write(const std::string& path, const std::string& text) { write_file_atomic(path, text); }

}  // namespace

TEST(Settings, DefaultsComeFromTheCpuPreset) {
  TempDir d;
  write(d.file(".env"), "");
  auto s = Settings::load(opts_for(d));
  EXPECT_EQ(s.preset(), "cpu");
  EXPECT_EQ(s.str("DRIVE_ROOT"), "./runs/cpu");
  EXPECT_EQ(s.source("DRIVE_ROOT").kind, SettingSource::Preset);
  EXPECT_EQ(s.str("DATA_DIR"), "./runs/cpu/data");  // default ${DRIVE_ROOT}/data follows the preset
  EXPECT_EQ(s.i64("TOP_K"), 20);
  EXPECT_EQ(s.i64("BUDGET_TOKENS"), 1050000);  // "1.05M" in configs/cpu.env
  EXPECT_TRUE(s.flag("SKIP_EXTERNAL"));
}

TEST(Settings, PrecedenceOverrideEnvDotenvPresetDefault) {
  TempDir d;
  write(d.file(".env"), "TOP_K=5\nSEQ_LEN=128\nBATCH_SIZE=3\n");
  auto o = opts_for(d, {{"TOP_K", "7"}, {"SEQ_LEN", "64"}});
  o.overrides["TOP_K"] = "9";
  auto s = Settings::load(o);
  EXPECT_EQ(s.i64("TOP_K"), 9);
  EXPECT_EQ(s.source("TOP_K").describe(), "--set");
  EXPECT_EQ(s.i64("SEQ_LEN"), 64);
  EXPECT_EQ(s.source("SEQ_LEN").describe(), "environment");
  EXPECT_EQ(s.i64("BATCH_SIZE"), 3);
  EXPECT_EQ(s.source("BATCH_SIZE").describe(), d.file(".env") + ":3");
  EXPECT_EQ(s.i64("STUDENT_LAYERS"), 6);  // preset
  EXPECT_EQ(s.source("STUDENT_LAYERS").kind, SettingSource::Preset);
  EXPECT_EQ(s.f64("FLIP_AT"), 0.9);  // built-in default
  EXPECT_EQ(s.source("FLIP_AT").kind, SettingSource::Default);
}

// `with`: a variant of one configuration (the experiment's arms), each value checked as `load` checks
// it; the original is unchanged; derived values are not re-expanded.
TEST(Settings, WithReplacesCheckedValuesInACopy) {
  TempDir d;
  write(d.file(".env"), "");
  const auto s = Settings::load(opts_for(d));
  const auto v = s.with({{"TOP_K", "100"}, {"KD_MID_TOKEN", "true"}, {"KD_DIR", "/elsewhere"}});
  EXPECT_EQ(v.i64("TOP_K"), 100);
  EXPECT_TRUE(v.flag("KD_MID_TOKEN"));
  EXPECT_EQ(v.str("KD_DIR"), "/elsewhere");
  EXPECT_EQ(v.source("TOP_K").kind, SettingSource::Override);
  EXPECT_EQ(v.str("DATA_DIR"), s.str("DATA_DIR"));
  EXPECT_EQ(s.i64("TOP_K"), 20);
  EXPECT_FALSE(s.flag("KD_MID_TOKEN"));
  EXPECT_EQ(s.str("KD_DIR"), s.str("DATA_DIR"));  // KD_DIR follows DATA_DIR unless set
  EXPECT_THROW(s.with({{"TOP_K", "many"}}), ConfigError);
  EXPECT_THROW(s.with({{"TOP_K", "100000"}}), ConfigError);  // out of range
  EXPECT_THROW(s.with({{"NO_SUCH_SETTING", "1"}}), Error);
}

TEST(Settings, PresetChosenInDotenvOrEnv) {
  TempDir d;
  write(d.file(".env"), "PRESET=tiny\n");
  EXPECT_EQ(Settings::load(opts_for(d)).str("STUDENT_D_MODEL"), "64");
  EXPECT_EQ(Settings::load(opts_for(d, {{"PRESET", "gpu"}})).str("DEVICE"), "cuda");
}

TEST(Settings, ExpansionFollowsFinalValues) {
  TempDir d;
  write(d.file(".env"),
        "export DRIVE_ROOT=\"${HOME}/kd\"\n"
        "REPORTS_DIR=${DRIVE_ROOT}/r\n"
        "CACHE_DIR=${XDG_NOPE:-/fallback}/c\n"
        "LOG_DIR='${DRIVE_ROOT}/literal'\n"
        "TEACHER_MODEL=\"cost \\$5\"\n");
  auto s = Settings::load(opts_for(d));
  EXPECT_EQ(s.str("DRIVE_ROOT"), "/home/u/kd");
  EXPECT_EQ(s.str("DATA_DIR"), "/home/u/kd/data");
  EXPECT_EQ(s.str("REPORTS_DIR"), "/home/u/kd/r");
  EXPECT_EQ(s.str("CACHE_DIR"), "/fallback/c");
  EXPECT_EQ(s.str("LOG_DIR"), "${DRIVE_ROOT}/literal");
  EXPECT_EQ(s.str("TEACHER_MODEL"), "cost $5");
}

TEST(Settings, CrlfFilesWork) {
  TempDir d;
  write(d.file(".env"), "TOP_K=3\r\nDRIVE_ROOT=/x\r\n");
  auto s = Settings::load(opts_for(d));
  EXPECT_EQ(s.i64("TOP_K"), 3);
  EXPECT_EQ(s.str("DATA_DIR"), "/x/data");
}

TEST(Settings, UnknownKeyWarnsWithNearestName) {
  TempDir d;
  write(d.file(".env"), "TOPK=3\nOPENAI_APIKEY=sk-abc\n");
  auto s = Settings::load(opts_for(d));
  ASSERT_EQ(s.warnings().size(), 2u);
  EXPECT_NE(s.warnings()[0].find("did you mean TOP_K?"), std::string::npos) << s.warnings()[0];
  EXPECT_NE(s.warnings()[1].find("did you mean OPENAI_API_KEY?"), std::string::npos) << s.warnings()[1];
}

TEST(Settings, SecretsAreRedactedEverywhere) {
  TempDir d;
  const std::string key = "sk-" "proj-THISISASECRETVALUE1234567890";
  write(d.file(".env"), "OPENAI_API_KEY=" + key + "\nGROQ_API_KEY=gsk_anotherSecretValue999\n");
  auto s = Settings::load(opts_for(d));
  EXPECT_EQ(s.str("OPENAI_API_KEY"), key);
  const std::string dumped = s.to_json(true).dump();
  EXPECT_EQ(dumped.find("THISISASECRET"), std::string::npos);
  EXPECT_EQ(dumped.find("anotherSecret"), std::string::npos);
  EXPECT_NE(s.describe_value("OPENAI_API_KEY").find("redacted"), std::string::npos);
  EXPECT_EQ(redact("calling with " + key + " now").find("THISISASECRET"), std::string::npos);
  // Key-shaped strings are masked even when never registered.
  EXPECT_EQ(redact("Authorization: Bearer abcdefghijklmnopqrstuvwxyz").find("abcdefghijklmnop"), std::string::npos);
  EXPECT_EQ(redact("key AIzaSyA1234567890abcdefghijklmnopqrstu").find("1234567890abcdef"), std::string::npos);
  // Secrets do not change the settings hash (reports carry the hash).
  write(d.file(".env"), "");
  EXPECT_EQ(Settings::load(opts_for(d)).hash(), s.hash());
}

TEST(Settings, ErrorsNameKeyOriginAndExpectedForm) {
  TempDir d;
  write(d.file(".env"), "TOP_K=abc\nFLIP_AT=1.5\n");
  try {
    Settings::load(opts_for(d));
    FAIL() << "accepted bad values";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find(d.file(".env") + ":1: TOP_K='abc': not an integer"), std::string::npos) << m;
    EXPECT_NE(m.find("in [1, 256]"), std::string::npos) << m;
    EXPECT_NE(m.find(d.file(".env") + ":2: FLIP_AT='1.5': out of range"), std::string::npos) << m;
  }
}

TEST(Settings, EnvValueErrorsSayEnvironment) {
  TempDir d;
  write(d.file(".env"), "");
  try {
    Settings::load(opts_for(d, {{"SKIP_EXTERNAL", "maybe"}}));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("environment: SKIP_EXTERNAL='maybe': not a boolean"), std::string::npos)
        << e.what();
  }
}

TEST(Settings, SecretValueNeverInErrors) {
  TempDir d;
  write(d.file(".env"), "OPENAI_API_KEY=sk-" "proj-SECRETSECRETSECRET12345\nOPENAI_API_KEY=again\n");
  try {
    Settings::load(opts_for(d));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find("SECRETSECRET"), std::string::npos) << e.what();
  }
}

TEST(Settings, EnvExampleDocumentsEverySetting) {
  const std::string example = read_file(test::repo_root() + "/.env.example");
  for (const auto& s : setting_specs())
    EXPECT_NE(example.find(std::string("\n# ") + s.name + "="), std::string::npos)
        << s.name << " is missing from .env.example";
  // The file is generated from the declarations: it must be exactly what the CLI prints.
  TempDir d;
  auto r = test::run_cli(d.path(), "config --example");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, example) << "regenerate: build/bin/bitnet-kde config --example > .env.example";
}

// --- The CLI as a user runs it: every malformed .env is a clear error and a non-zero exit. -------------

struct Malformed {
  const char* name;
  const char* env_text;
  const char* must_mention;
};

TEST(SettingsCli, MalformedDotenvFailsClearly) {
  const Malformed cases[] = {
      {"missing '='", "TOP_K\n", ".env:1: 'TOP_K' has no '='"},
      {"missing key", "=5\n", ".env:1: missing key"},
      {"bad key start", "9LIVES=1\n", ".env:1: a key must start"},
      {"dash in key", "TOP-K=1\n", ".env:1: invalid key"},
      {"unterminated single", "TEACHER_MODEL='gpt\n", ".env:1: unterminated single quote"},
      {"unterminated double", "TEACHER_MODEL=\"gpt\n", ".env:1: unterminated double quote"},
      {"text after quote", "TEACHER_MODEL=\"gpt\" 4\n", "after the closing quote"},
      {"unknown escape", "TEACHER_MODEL=\"a\\qb\"\n", "unknown escape"},
      {"not an integer", "TOP_K=twenty\n", ".env:1: TOP_K='twenty': not an integer"},
      {"integer out of range", "TOP_K=500\n", "TOP_K='500': out of range; expected an integer"},
      {"not a number", "LR=fast\n", "LR='fast': not a number"},
      {"nan is not a number", "LR=nan\n", "LR='nan': not a number"},
      {"float out of range", "FLIP_AT=1.2\n", "FLIP_AT='1.2': out of range"},
      {"bad boolean", "SKIP_EXTERNAL=perhaps\n", "SKIP_EXTERNAL='perhaps': not a boolean"},
      {"bad enum", "TEACHER_PROVIDER=openia\n", "TEACHER_PROVIDER='openia': not a known choice; expected one of local|openai"},
      {"undefined reference", "DATA_DIR=${NOPE}/data\n", "DATA_DIR refers to ${NOPE}, which is not set"},
      {"unterminated reference", "DATA_DIR=${DRIVE_ROOT/data\n", "unterminated ${"},
      {"reference cycle", "DRIVE_ROOT=${DATA_DIR}/x\n", "cycle in ${...} references"},
      {"duplicate key", "TOP_K=1\nTOP_K=2\n", ".env:2: TOP_K is set twice (first at line 1)"},
      {"required value empty", "DRIVE_ROOT=\n", "DRIVE_ROOT='': empty"},
      {"unknown preset", "PRESET=huge\n", "unknown preset 'huge'"},
      {"NUL bytes", "TOP_K=1\n\x01\x02\n", "a key must start"},
  };
  TempDir d;
  for (const auto& c : cases) {
    write(d.file(".env"), c.env_text);
    auto r = test::run_cli(d.path(), "config");
    EXPECT_EQ(r.exit_code, 2) << c.name << "\n" << r.output;
    EXPECT_NE(r.output.find(c.must_mention), std::string::npos) << c.name << ": output was\n" << r.output;
    EXPECT_NE(r.output.find("error:"), std::string::npos) << c.name;
  }
}

// A misspelled key would silently fall back to its default (TEACHR_PROVIDER -> the local teacher):
// an error naming the line and the nearest name, unless --lenient.
TEST(SettingsCli, UnknownKeyIsAnErrorUnlessLenient) {
  TempDir d;
  write(d.file(".env"), "TOP_K=4\nTEACHR_PROVIDER=openai\n");
  auto r = test::run_cli(d.path(), "config");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find(".env:2: unknown setting TEACHR_PROVIDER"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean TEACHER_PROVIDER"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--lenient"), std::string::npos) << r.output;
  auto lenient = test::run_cli(d.path(), "--lenient config --get TOP_K");
  EXPECT_EQ(lenient.exit_code, 0) << lenient.output;
  EXPECT_NE(lenient.output.find("4"), std::string::npos) << lenient.output;
}

// The teacher's settings must be usable: an API provider without its key, or a base URL that is not
// a URL, makes `config` exit 2 with what and how to fix it (after printing the values).
TEST(SettingsCli, ConfigRefusesATeacherThatCannotWork) {
  TempDir d;
  write(d.file(".env"), "TEACHER_PROVIDER=openai\n");
  auto no_key = test::run_cli(d.path(), "config");
  EXPECT_EQ(no_key.exit_code, 2) << no_key.output;
  EXPECT_NE(no_key.output.find("needs OPENAI_API_KEY"), std::string::npos) << no_key.output;
  write(d.file(".env"), "TEACHER_PROVIDER=openai\nOPENAI_API_KEY=sk-" "live-0123456789abcdefghijklmnop\nOPENAI_BASE_URL=ftp//not a url\n");
  auto bad_url = test::run_cli(d.path(), "config");
  EXPECT_EQ(bad_url.exit_code, 2) << bad_url.output;
  EXPECT_NE(bad_url.output.find("OPENAI_BASE_URL=ftp//not a url is not a usable URL"), std::string::npos) << bad_url.output;
  EXPECT_EQ(bad_url.output.find("0123456789abcdef"), std::string::npos);  // the key stays redacted
  write(d.file(".env"), "TEACHER_PROVIDER=openai\nOPENAI_API_KEY=sk-" "live-0123456789abcdefghijklmnop\n");
  EXPECT_EQ(test::run_cli(d.path(), "config").exit_code, 0);
}

TEST(SettingsCli, MissingExplicitEnvFileIsAnError) {
  TempDir d;
  auto r = test::run_cli(d.path(), "--env-file nope.env config");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("'nope.env'"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("cp .env.example"), std::string::npos) << r.output;
}

TEST(SettingsCli, ConfigPrintsSourcesAndRedacts) {
  TempDir d;
  write(d.file(".env"), "OPENAI_API_KEY=sk-" "live-0123456789abcdefghijklmnop\nTOP_K=4\n");
  auto r = test::run_cli(d.path(), "config --json", "SEQ_LEN=32");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.find("0123456789abcdef"), std::string::npos);
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["TOP_K"]["value"], "4");
  EXPECT_EQ(j["TOP_K"]["source"], ".env:2");
  EXPECT_EQ(j["SEQ_LEN"]["source"], "environment");
  EXPECT_NE(j["STUDENT_LAYERS"]["source"].get<std::string>().find("cpu.env:"), std::string::npos);
}

TEST(SettingsCli, GetPrintsOneValue) {
  TempDir d;
  write(d.file(".env"), "TEACHER_PROVIDER=openai\nOPENAI_API_KEY=sk-" "live-0123456789abcdefghijklmnop\n");
  auto r = test::run_cli(d.path(), "config --get TEACHER_PROVIDER");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output, "openai\n");
  auto key = test::run_cli(d.path(), "config --get OPENAI_API_KEY");
  EXPECT_EQ(key.output.find("0123456789"), std::string::npos) << key.output;
  auto bad = test::run_cli(d.path(), "config --get TOPK");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("did you mean TOP_K?"), std::string::npos) << bad.output;
}

TEST(SettingsCli, EnsureDirsCreatesTheTree) {
  TempDir d;
  write(d.file(".env"), "DRIVE_ROOT=" + d.file("drive") + "\nLOG_DIR=" + d.file("elsewhere/logs") + "\n");
  auto r = test::run_cli(d.path(), "ensure-dirs");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* sub : {"drive", "drive/data", "drive/reports", "drive/checkpoints", "drive/cache", "elsewhere/logs"})
    EXPECT_TRUE(dir_exists(d.file(sub))) << sub;
  auto again = test::run_cli(d.path(), "ensure-dirs");
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_NE(again.output.find("exists"), std::string::npos);
  // A file where a folder should be: clear error.
  write(d.file(".env"), "DRIVE_ROOT=" + d.file("drive") + "\nCACHE_DIR=" + d.file(".env") + "\n");
  auto bad = test::run_cli(d.path(), "ensure-dirs");
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("is a file, not a directory"), std::string::npos) << bad.output;
}

TEST(SettingsCli, EveryVerbHasHelp) {
  TempDir d;
  auto top = test::run_cli(d.path(), "--help");
  ASSERT_EQ(top.exit_code, 0);
  for (const char* verb : {"config", "ensure-dirs", "prepare", "teacher", "collect", "train", "eval", "dryrun",
                           "pipeline", "inspect", "serve", "export"}) {
    EXPECT_NE(top.output.find(verb), std::string::npos) << verb;
    auto r = test::run_cli(d.path(), std::string(verb) + " --help");
    EXPECT_EQ(r.exit_code, 0) << verb << "\n" << r.output;
    EXPECT_NE(r.output.find("Usage"), std::string::npos) << verb;
  }
}

// `pipeline`: every stage of the offline default in order, each in its own process (so each report's
// peak memory is its own), skipping stages whose outputs are current; then the seed's exit criteria
// (M0-M4) with their figures -> REPORTS_DIR/pipeline.json and report.html.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <functional>
#include <optional>

#include "cli/cli.h"
#include "core/config/dirs.h"
#include "core/report/html_report.h"
#include "core/stages/exit_criteria.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/util/report.h"
#include "core/util/sysinfo.h"
#include "build_info.h"

extern char** environ;

namespace bkd::cli {
namespace {
using json = nlohmann::json;
namespace fs = std::filesystem;

std::optional<fs::file_time_type> mtime(const std::string& path) {
  std::error_code ec;
  auto t = fs::last_write_time(path, ec);
  if (ec) return std::nullopt;
  return t;
}

// The newest state.json under CKPT_DIR/<role>/step_*/ (when the role's last checkpoint was written).
std::optional<fs::file_time_type> checkpoint_time(const Settings& s, const std::string& role) {
  const std::string dir = join_path(s.str("CKPT_DIR"), role);
  if (!dir_exists(dir)) return std::nullopt;
  std::optional<fs::file_time_type> best;
  for (const auto& name : list_dir(dir)) {
    if (name.rfind("step_", 0) != 0 || name.find(".tmp") != std::string::npos) continue;
    auto t = mtime(join_path(join_path(dir, name), "state.json"));
    if (t && (!best || *t > *best)) best = t;
  }
  return best;
}

// A report is current when it was written with today's settings and this build, after every input.
bool report_current(const Settings& s, const std::string& report, const std::vector<std::optional<fs::file_time_type>>& inputs,
                    std::string& why) {
  const std::string path = join_path(s.str("REPORTS_DIR"), report);
  auto t = mtime(path);
  if (!t) return why = report + " does not exist", false;
  json r;
  try {
    r = json::parse(read_file(path));
  } catch (const std::exception&) {
    return why = report + " is not readable", false;
  }
  const json& meta = r.contains("_meta") ? r["_meta"] : json();
  if (meta.value("settings_hash", "") != s.hash()) return why = "settings changed since " + report, false;
  for (const auto& in : inputs)
    if (!in || *in > *t) return why = "an input is newer than " + report, false;
  return true;
}

struct Stage {
  std::string name;
  std::vector<std::string> args;
  // nullopt: the stage decides itself (it skips finished work quickly); else current or not, and why.
  std::function<bool(std::string&)> current;
};

int spawn_self(const std::vector<std::string>& args, const Cli& cli) {
  std::vector<std::string> argv = {"bitnet-kde"};
  if (!cli.load_options.env_file.empty()) argv.insert(argv.end(), {"--env-file", cli.load_options.env_file});
  for (const auto& kv : cli.set_args) argv.insert(argv.end(), {"--set", kv});
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::fflush(stdout), std::fflush(stderr);
  pid_t pid;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, cargv.data(), environ) != 0)
    throw Error("pipeline: cannot start a stage process (/proc/self/exe)");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw Error("pipeline: lost the stage process");
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int run_pipeline(Cli& cli, bool force) {
  const Settings& s = cli.settings();
  ensure_dirs(s);
  Report report("pipeline", &s);
  const bool local = s.str("TEACHER_PROVIDER") == "local";
  std::vector<Stage> stages;
  stages.push_back({"ensure-dirs", {"ensure-dirs"}, nullptr});
  stages.push_back({"prepare", {"prepare"}, nullptr});
  if (local) stages.push_back({"teacher pretraining", {"train", "--role", "teacher"}, nullptr});
  stages.push_back({"teacher baseline", {"teacher"}, [&](std::string& why) {
                      return report_current(s, "teacher_baseline.json",
                                            {local ? checkpoint_time(s, "teacher") : mtime(join_path(s.str("REPORTS_DIR"), "prepare.json"))},
                                            why);
                    }});
  stages.push_back({"collect", {"collect"}, nullptr});
  stages.push_back({"student KD training", {"train"}, nullptr});
  stages.push_back({"CE-only ablation student", {"train", "--role", "student_ce"}, nullptr});
  stages.push_back({"eval", {"eval"}, [&](std::string& why) {
                      return report_current(s, "mini_evaluation_report.json",
                                            {checkpoint_time(s, "student"), checkpoint_time(s, "student_ce"),
                                             local ? checkpoint_time(s, "teacher") : mtime(join_path(s.str("REPORTS_DIR"), "prepare.json")),
                                             mtime(join_path(s.str("REPORTS_DIR"), "teacher_baseline.json"))},
                                            why);
                    }});
  stages.push_back({"7B dry-run", {"dryrun"}, [&](std::string& why) {
                      const std::string path = join_path(s.str("REPORTS_DIR"), "dryrun_7b.json");
                      if (!report_current(s, "dryrun_7b.json", {mtime(path)}, why)) return false;
                      const json r = json::parse(read_file(path));
                      if (r["_meta"].value("git_commit", "") != BKD_GIT_COMMIT)
                        return why = "another build wrote dryrun_7b.json", false;
                      return true;
                    }});

  json log = json::array();
  Timer total;
  int rc = 0;
  for (const auto& st : stages) {
    std::string why;
    if (!force && st.current && st.current(why)) {
      std::printf("pipeline: %-26s current (skipped)\n", st.name.c_str());
      log.push_back({{"stage", st.name}, {"status", "current"}, {"seconds", 0.0}});
      continue;
    }
    std::printf("pipeline: %-26s running: bitnet-kde", st.name.c_str());
    for (const auto& a : st.args) std::printf(" %s", a.c_str());
    std::printf("%s\n", why.empty() ? "" : (" (" + why + ")").c_str());
    Timer t;
    rc = spawn_self(st.args, cli);
    log.push_back({{"stage", st.name}, {"status", rc == 0 ? "ran" : "failed"}, {"exit_code", rc}, {"seconds", t.seconds()}});
    std::printf("pipeline: %-26s %s in %.1f s\n", st.name.c_str(), rc == 0 ? "done" : "FAILED", t.seconds());
    if (rc != 0) break;
  }

  const auto criteria = v0_criteria(s);
  int passed = 0;
  for (const auto& c : criteria) passed += c.pass;
  report.body() = {{"stages", log},
                   {"completed", rc == 0},
                   {"criteria", criteria_json(criteria)},
                   {"criteria_passed", passed},
                   {"criteria_total", criteria.size()},
                   {"stage_seconds_total", total.seconds()}};
  report.write(join_path(s.str("REPORTS_DIR"), "pipeline.json"));
  const std::string html = write_html_report(s);

  std::printf("\nStages:\n");
  for (const auto& l : log)
    std::printf("  %-26s %-8s %8.1f s\n", l["stage"].get<std::string>().c_str(), l["status"].get<std::string>().c_str(),
                l["seconds"].get<double>());
  std::printf("  %-26s %-8s %8.1f s\n", "total", "", total.seconds());
  std::printf("\nSeed v0 exit criteria (%d/%zu pass):\n%s", passed, criteria.size(), criteria_table(criteria).c_str());
  std::printf("\nreport: %s\nhtml:   %s\n", join_path(s.str("REPORTS_DIR"), "pipeline.json").c_str(), html.c_str());
  if (rc != 0) {
    if (rc > 128)
      std::fprintf(stderr, "pipeline: stopped: the stage process died of signal %d (%s); its crash report is above\n",
                   rc - 128, strsignal(rc - 128));
    else
      std::fprintf(stderr, "pipeline: stopped at a failed stage (exit %d); fix it and run again: finished stages are skipped\n", rc);
    return rc;
  }
  return 0;
}

void setup_pipeline(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("pipeline", "run every stage in order, skipping current outputs; print the M0-M4 exit criteria");
  static bool force = false;
  sub->add_flag("--force", force, "run the report stages (baseline, eval, dry-run) even when their reports are current");
  sub->callback([&cli] { cli.exit_code = run_pipeline(cli, force); });
}

RegisterVerb reg_pipeline("pipeline", 90, setup_pipeline);

}  // namespace
}  // namespace bkd::cli

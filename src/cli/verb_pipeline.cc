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
#include "core/config/run_layout.h"
#include "core/stages/pipeline.h"
#include "core/report/html_report.h"
#include "core/stages/exit_criteria.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/report/report.h"
#include "core/util/sysinfo.h"
#include "build_info.h"

extern char** environ;

namespace bkd::cli {
namespace {
using json = nlohmann::json;

int spawn_self(const std::vector<std::string>& args, const Cli& cli) {
  std::vector<std::string> argv = {"bitnet-kde"};
  if (!cli.load_options.env_file.empty()) argv.insert(argv.end(), {"--env-file", cli.load_options.env_file});
  for (const auto& kv : cli.set_args) argv.insert(argv.end(), {"--set", kv});
  if (cli.lenient) argv.push_back("--lenient");
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

int run_pipeline(Cli& cli, bool force, const std::optional<std::string>& until) {
  const Settings& s = cli.settings();
  const RunLayout layout(s);
  Report report("pipeline", &s);
  const std::vector<PipelineStage> stages = stages_until(pipeline_stages(s, BKD_GIT_COMMIT), until);

  json log = json::array();
  Timer total;
  int rc = 0;
  for (const auto& st : stages) {
    std::string why;
    if (!force && st.current && st.current(why)) {
      std::printf("pipeline: %-26s current (skipped)\n", st.title.c_str());
      log.push_back({{"stage", st.title}, {"status", "current"}, {"seconds", 0.0}});
      continue;
    }
    std::printf("pipeline: %-26s running: bitnet-kde", st.title.c_str());
    for (const auto& a : st.args) std::printf(" %s", a.c_str());
    std::printf("%s\n", why.empty() ? "" : (" (" + why + ")").c_str());
    Timer t;
    rc = spawn_self(st.args, cli);
    log.push_back({{"stage", st.title}, {"status", rc == 0 ? "ran" : "failed"}, {"exit_code", rc}, {"seconds", t.seconds()}});
    std::printf("pipeline: %-26s %s in %.1f s\n", st.title.c_str(), rc == 0 ? "done" : "FAILED", t.seconds());
    if (rc != 0) break;
  }
  // Part of the pipeline (`--until`, the Makefile's stage targets): no criteria, no pipeline report.
  if (until) {
    if (rc != 0) std::fprintf(stderr, "pipeline: stopped at a failed stage (exit %d)\n", rc);
    return rc;
  }

  layout.ensure_folders();  // the report's folder, also when the first stage failed
  const auto criteria = v0_criteria(s);
  int passed = 0;
  for (const auto& c : criteria) passed += c.pass;
  report.body() = {{"stages", log},
                   {"completed", rc == 0},
                   {"criteria", criteria_json(criteria)},
                   {"criteria_passed", passed},
                   {"criteria_total", criteria.size()},
                   {"stage_seconds_total", total.seconds()}};
  report.write(layout.pipeline_report());
  const std::string html = write_html_report(s);

  std::printf("\nStages:\n");
  for (const auto& l : log)
    std::printf("  %-26s %-8s %8.1f s\n", l["stage"].get<std::string>().c_str(), l["status"].get<std::string>().c_str(),
                l["seconds"].get<double>());
  std::printf("  %-26s %-8s %8.1f s\n", "total", "", total.seconds());
  std::printf("\nSeed v0 exit criteria (%d/%zu pass):\n%s", passed, criteria.size(), criteria_table(criteria).c_str());
  std::printf("\nreport: %s\nhtml:   %s\n", layout.pipeline_report().c_str(), html.c_str());
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
  static std::string until;
  static CLI::Option* until_opt = nullptr;
  std::string names;
  for (const auto& n : pipeline_stage_names()) names += (names.empty() ? "" : ", ") + n;
  sub->add_flag("--force", force, "run the report stages (baseline, eval, dry-run) even when their reports are current");
  until_opt = sub->add_option("--until", until, "stop after this stage: " + names);
  sub->callback([&cli] {
    cli.exit_code = run_pipeline(cli, force, until_opt->count() > 0 ? std::optional<std::string>(until) : std::nullopt);
  });
}

RegisterVerb reg_pipeline("pipeline", 90, setup_pipeline);

}  // namespace
}  // namespace bkd::cli

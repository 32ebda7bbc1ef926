// bitnet-kde: command-line entry point. Parses global options, dispatches to a verb, and turns
// errors into one clear message and an exit status (2 usage/settings, 1 everything else).
#include <algorithm>
#include <cstdio>
#include <map>

#include "build_info.h"
#include "core/config/run_layout.h"
#include "cli/cli.h"
#include "core/util/crash_report.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"

namespace bkd::cli {

std::vector<VerbInfo>& verb_registry() {
  static std::vector<VerbInfo> verbs;
  return verbs;
}

const Settings& Cli::settings() {
  if (!settings_) {
    for (const auto& kv : set_args) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        throw UsageError("--set expects KEY=VALUE, got '" + kv + "'");
      load_options.overrides[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    settings_ = std::make_unique<Settings>(Settings::load(load_options));
    log_set_level(log_level_from_string(settings_->str("LOG_LEVEL")));
    if (!lenient && !settings_->warnings().empty()) {
      std::string what;
      for (const auto& w : settings_->warnings()) what += "\n  " + w;
      settings_.reset();
      throw ConfigError("invalid setting:" + what,
                        "fix or remove the line (`bitnet-kde config --example` lists every setting), or pass --lenient "
                        "to ignore unknown settings");
    }
    for (const auto& w : settings_->warnings()) log_warn(w + " is ignored (--lenient)");
    const RunLayout layout(*settings_);
    if (dir_exists(layout.logs())) log_set_file(layout.log_file());
  }
  return *settings_;
}

}  // namespace bkd::cli

int main(int argc, char** argv) {
  using namespace bkd;
  install_crash_report("bitnet-kde");
  cli::Cli state;
  state.argv.assign(argv, argv + argc);
  CLI::App app{"bitnet-kde: distill a teacher LLM into a ternary BitNet student, end to end"};
  app.set_version_flag("--version", std::string("bitnet-kde ") + BKD_VERSION + " (" + BKD_GIT_COMMIT + ")");
  app.add_option("--env-file", state.load_options.env_file, "settings file (default: $ENV_FILE or ./.env)");
  app.add_option("--set", state.set_args, "override a setting: --set KEY=VALUE (repeatable)");
  app.add_flag("--lenient", state.lenient, "warn about unknown settings in .env and preset files instead of failing");
  app.require_subcommand(1);
  app.fallthrough();

  // Real verbs replace pending placeholders of the same name; order by pipeline position.
  auto verbs = cli::verb_registry();
  std::stable_sort(verbs.begin(), verbs.end(), [](const auto& a, const auto& b) {
    return a.order != b.order ? a.order < b.order : a.pending < b.pending;
  });
  std::map<std::string, bool> added;
  for (const auto& v : verbs) {
    if (added.count(v.name)) continue;
    added[v.name] = true;
    v.setup(app, state);
  }
  for (int i = 1; i < argc; ++i)  // the verb, for a crash report; loops narrow it down as they run
    if (added.count(argv[i])) {
      set_crash_context("bitnet-kde %s", argv[i]);
      break;
    }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const UsageError& e) {
    std::fprintf(stderr, "error: %s\n", redact(e.what()).c_str());
    if (!e.hint().empty()) std::fprintf(stderr, "hint: %s\n", redact(e.hint()).c_str());
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", redact(e.what()).c_str());
    if (!e.hint().empty()) std::fprintf(stderr, "hint: %s\n", redact(e.hint()).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", redact(e.what()).c_str());
    return 1;
  }
  return state.exit_code;
}

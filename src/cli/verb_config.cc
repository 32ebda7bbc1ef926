// `config`: print the effective settings and where each came from (secrets redacted).
// `ensure-dirs`: create the directory tree the pipeline writes into.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "core/config/dirs.h"

namespace bkd::cli {
namespace {

void setup_config(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("config", "print the effective settings with their sources (secrets redacted)");
  static bool json = false;
  static std::string group;
  sub->add_flag("--json", json, "machine-readable output");
  sub->add_option("--group", group, "only this group (paths, providers, teacher, data, collect, train, model, ...)");
  sub->callback([&cli] {
    const Settings& s = cli.settings();
    if (json) {
      nlohmann::json j = s.to_json(true);
      if (!group.empty())
        for (auto it = j.begin(); it != j.end();) it = (*it)["group"] == group ? std::next(it) : j.erase(it);
      std::printf("%s\n", j.dump(2).c_str());
      return;
    }
    std::printf("# preset: %s (%s)   .env: %s   settings hash: %s\n", s.preset().c_str(), s.preset_file().c_str(),
                s.env_file().empty() ? "(none)" : s.env_file().c_str(), s.hash().c_str());
    std::string last_group;
    for (const auto& spec : setting_specs()) {
      if (!group.empty() && group != spec.group) continue;
      if (spec.group != last_group) std::printf("\n[%s]\n", spec.group), last_group = spec.group;
      std::printf("%-28s = %-40s # %s\n", spec.name, s.describe_value(spec.name).c_str(),
                  s.source(spec.name).describe().c_str());
    }
  });
}

void setup_ensure_dirs(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("ensure-dirs", "create DRIVE_ROOT, DATA_DIR, REPORTS_DIR, CKPT_DIR, CACHE_DIR, LOG_DIR");
  sub->callback([&cli] {
    const Settings& s = cli.settings();
    auto created = ensure_dirs(s);
    for (const auto& d : pipeline_dirs(s))
      std::printf("%s %s\n", std::find(created.begin(), created.end(), d) != created.end() ? "created" : "exists ",
                  d.c_str());
  });
}

RegisterVerb reg_config("config", 10, setup_config);
RegisterVerb reg_dirs("ensure-dirs", 20, setup_ensure_dirs);

}  // namespace
}  // namespace bkd::cli

#pragma once
// The CLI is a thin shell over the library: each verb lives in its own verb_<name>.cc and registers
// itself here, so adding a verb never touches main.cc.
#include <CLI/CLI.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/config/settings.h"

namespace bkd::cli {

// State shared by all verbs: global options and the settings, loaded on first use.
class Cli {
 public:
  LoadOptions load_options;
  std::vector<std::string> set_args;  // --set KEY=VALUE
  bool lenient = false;               // --lenient: unknown settings are warnings, not errors
  int exit_code = 0;
  std::vector<std::string> argv;      // the command line as given (a launcher re-runs it per rank)
  // Loads once. An unknown setting in a file (a misspelled key would silently fall back to its
  // default) is an error naming the file, line and nearest name, unless --lenient.
  const Settings& settings();

 private:
  std::unique_ptr<Settings> settings_;
};

using VerbSetup = std::function<void(CLI::App& app, Cli& cli)>;

struct VerbInfo {
  std::string name;
  int order;       // position in --help (pipeline order)
  bool pending;    // placeholder until the stage exists; a real verb of the same name replaces it
  VerbSetup setup;
};

std::vector<VerbInfo>& verb_registry();

struct RegisterVerb {
  RegisterVerb(std::string name, int order, VerbSetup setup, bool pending = false) {
    verb_registry().push_back({std::move(name), order, pending, std::move(setup)});
  }
};

}  // namespace bkd::cli

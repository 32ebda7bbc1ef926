#pragma once
// Weights & Biases, through the `wandb` command-line tool: at the end of a training run the
// TensorBoard event files of that run are uploaded with `wandb sync --sync-tensorboard`.
// Off unless WANDB_DISABLED=false, WANDB_API_KEY is set and `wandb` is on PATH; otherwise one log
// line says why it is skipped. The key reaches the tool only through its environment: never on
// the command line, never in a log line (the tool's own output is logged through redaction).
#include <string>
#include <vector>

namespace bkd {
class Settings;

struct WandbStatus {
  bool enabled = false;
  std::string reason;      // why it is skipped (when !enabled)
  std::string executable;  // full path of `wandb` (when enabled)
  std::string api_key, project;
};

// `path_env`: the PATH to search (empty: the process's PATH).
WandbStatus wandb_status(const Settings& s, const std::string& path_env = {});

// First executable file named `name` in the ':'-separated `path_env`; empty when none.
std::string find_on_path(const std::string& name, const std::string& path_env);

struct WandbSyncResult {
  int exit_code = -1;
  std::vector<std::string> argv;  // what ran (no secret in it)
};

// Runs `wandb sync --sync-tensorboard --project P [--entity E] <dir>` with WANDB_API_KEY in the
// child's environment only; stdin is /dev/null and the tool's output goes to the log, redacted.
WandbSyncResult wandb_sync(const WandbStatus& st, const std::string& dir);

}  // namespace bkd

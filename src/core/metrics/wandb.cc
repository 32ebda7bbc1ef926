#include "core/metrics/wandb.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/config/settings.h"
#include "core/util/error.h"
#include "core/util/log.h"

extern char** environ;

namespace bkd {

std::string find_on_path(const std::string& name, const std::string& path_env) {
  size_t start = 0;
  while (start <= path_env.size()) {
    size_t end = path_env.find(':', start);
    if (end == std::string::npos) end = path_env.size();
    std::string dir = path_env.substr(start, end - start);
    if (dir.empty()) dir = ".";
    const std::string cand = dir + "/" + name;
    struct stat st {};
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0) return cand;
    start = end + 1;
  }
  return {};
}

WandbStatus wandb_status(const Settings& s, const std::string& path_env) {
  WandbStatus st;
  st.project = s.str("WANDB_PROJECT");
  if (s.flag("WANDB_DISABLED")) {
    st.reason = "WANDB_DISABLED is set (set WANDB_DISABLED=false to upload runs)";
    return st;
  }
  st.api_key = s.str("WANDB_API_KEY");
  if (st.api_key.empty()) {
    st.reason = "WANDB_API_KEY is not set (put it in .env)";
    return st;
  }
  register_secret(st.api_key);
  const char* p = std::getenv("PATH");
  st.executable = find_on_path("wandb", path_env.empty() ? (p ? p : "") : path_env);
  if (st.executable.empty()) {
    st.reason = "no `wandb` command on PATH (pip install wandb)";
    st.api_key.clear();
    return st;
  }
  st.enabled = true;
  return st;
}

WandbSyncResult wandb_sync(const WandbStatus& st, const std::string& dir) {
  WandbSyncResult res;
  if (!st.enabled) return res;
  res.argv = {"wandb", "sync", "--sync-tensorboard", "--project", st.project};
  if (const char* e = std::getenv("WANDB_ENTITY"); e && *e) res.argv.insert(res.argv.end(), {"--entity", e});
  res.argv.push_back(dir);

  // The child's environment: ours, with WANDB_API_KEY set to the configured key (it may come from .env).
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "WANDB_API_KEY=", 14) != 0) env_store.emplace_back(*e);
  env_store.push_back("WANDB_API_KEY=" + st.api_key);
  std::vector<char*> envp, argv;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_store = res.argv;
  argv_store[0] = st.executable;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);

  int pipefd[2];
  if (::pipe(pipefd) != 0) {
    log_warn(std::string("W&B: cannot create a pipe: ") + std::strerror(errno));
    return res;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  posix_spawn_file_actions_addclose(&fa, pipefd[0]);
  posix_spawn_file_actions_addclose(&fa, pipefd[1]);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, st.executable.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    log_warn("W&B: cannot run " + st.executable + ": " + std::strerror(rc));
    return res;
  }
  std::string buf;
  char chunk[4096];
  ssize_t n;
  auto emit = [](const std::string& line) {
    if (!line.empty()) log_info("W&B: " + line);  // log_info redacts registered secrets
  };
  while ((n = ::read(pipefd[0], chunk, sizeof chunk)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    buf.append(chunk, size_t(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      emit(buf.substr(0, nl));
      buf.erase(0, nl + 1);
    }
  }
  emit(buf);
  ::close(pipefd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return res;
}

}  // namespace bkd

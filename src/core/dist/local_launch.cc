#include "core/dist/local_launch.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "core/util/error.h"
#include "core/util/log.h"

namespace bkd {
namespace {

volatile sig_atomic_t g_forward_signal = 0;
void remember_signal(int sig) { g_forward_signal = sig; }

std::string how_it_ended(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return "was killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  return "ended with status " + std::to_string(status);
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

pid_t start_rank(const LocalLaunch& l, int rank, int port) {
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(std::string("fork failed: ") + std::strerror(errno));
  if (pid > 0) return pid;
  ::setenv("RANK", std::to_string(rank).c_str(), 1);
  ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
  ::setenv("WORLD_SIZE", std::to_string(l.nproc).c_str(), 1);
  ::setenv("LOCAL_WORLD_SIZE", std::to_string(l.nproc).c_str(), 1);
  ::setenv("MASTER_ADDR", "127.0.0.1", 1);
  ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
  if (l.threads_per_rank > 0) ::setenv("THREADS", std::to_string(l.threads_per_rank).c_str(), 1);
  std::vector<char*> args;
  for (const auto& a : l.argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(l.program.c_str(), args.data());
  std::fprintf(stderr, "error: rank %d: cannot start %s: %s\n", rank, l.argv[0].c_str(), std::strerror(errno));
  ::_exit(127);
}

}  // namespace

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw Error("cannot find a free port on 127.0.0.1: " + why);
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

int launch_local_ranks(const LocalLaunch& l) {
  if (l.nproc < 1) throw UsageError("--nproc must be at least 1");
  if (l.argv.empty()) throw Error("no command to launch");
  const int port = free_loopback_port();
  log_info("launch: " + std::to_string(l.nproc) + " local ranks, rendezvous 127.0.0.1:" + std::to_string(port) +
           (l.threads_per_rank > 0 ? ", " + std::to_string(l.threads_per_rank) + " thread(s) each" : std::string()));
  struct sigaction sa{}, old_int{}, old_term{};
  sa.sa_handler = remember_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);

  std::vector<pid_t> pids;
  for (int r = 0; r < l.nproc; ++r) pids.push_back(start_rank(l, r, port));
  int running = l.nproc, result = 0;
  bool failed = false;
  std::chrono::steady_clock::time_point kill_at{};
  while (running > 0) {
    if (g_forward_signal) {
      for (pid_t p : pids)
        if (p > 0) ::kill(p, g_forward_signal);
      g_forward_signal = 0;
    }
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      for (int r = 0; r < l.nproc; ++r)
        if (pids[r] == done) {
          pids[r] = -1, --running;
          const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
          if (!ok) {
            log_error("launch: rank " + std::to_string(r) + " (pid " + std::to_string(done) + ") " + how_it_ended(status));
            if (!failed) {
              failed = true, result = exit_code_of(status);
              kill_at = std::chrono::steady_clock::now() + l.grace;
            }
          }
        }
      continue;
    }
    if (done < 0 && errno != EINTR) break;
    if (failed && std::chrono::steady_clock::now() > kill_at) {
      for (int r = 0; r < l.nproc; ++r)
        if (pids[r] > 0) {
          log_error("launch: rank " + std::to_string(r) + " still runs " + std::to_string(l.grace.count()) +
                    " s after a failure: killing it");
          ::kill(pids[r], SIGKILL);
        }
      kill_at = std::chrono::steady_clock::now() + std::chrono::hours(1);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  return result;
}

}  // namespace bkd

#pragma once
// `train --nproc N`: starts N ranks of a command on this machine with torchrun's variables (RANK,
// WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, MASTER_PORT = a free port) and supervises them.
// When one rank fails, the others get `grace` to notice it themselves (their collectives fail and
// name the rank), then are killed; nothing is left running.
#include <chrono>
#include <string>
#include <vector>

namespace bkd {

struct LocalLaunch {
  int nproc = 2;
  std::string program = "/proc/self/exe";  // this binary, whatever its path
  std::vector<std::string> argv;          // the arguments (argv[0] included), the same for every rank
  int threads_per_rank = 0;       // > 0: THREADS=<n> in each rank's environment
  std::chrono::seconds grace{30};
};

// Runs the ranks to completion. Returns 0 when all succeed, otherwise the first failing rank's exit
// code (128 + signal for a killed rank), after printing which rank failed and how.
int launch_local_ranks(const LocalLaunch& l);

// A TCP port on 127.0.0.1 that nothing listens on right now.
int free_loopback_port();

}  // namespace bkd

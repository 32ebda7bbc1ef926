#pragma once
// torchrun's launch contract: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT. torchrun,
// Slurm (via a two-line sbatch wrapper) and Kubernetes indexed Jobs set these; `train --nproc N`
// sets them for N local ranks. One reader, so training and collection agree on what they mean.
#include <map>
#include <string>

namespace bkd {

struct LaunchEnv {
  int rank = 0, world_size = 1, local_rank = 0;
  int local_world_size = 1;  // ranks on this machine (LOCAL_WORLD_SIZE, as torchrun sets it)
  std::string master_addr;  // empty when world_size == 1
  int master_port = 0;
  bool distributed() const { return world_size > 1; }
  std::string describe() const;  // "rank 1 of 2 (local 1), rendezvous 127.0.0.1:29500"
};

// From a variable table (tests) or the process environment. Unset RANK and WORLD_SIZE: one process.
// Throws UsageError naming the variable for a malformed or inconsistent contract (RANK >= WORLD_SIZE,
// WORLD_SIZE > 1 without MASTER_ADDR/MASTER_PORT, only one of RANK and WORLD_SIZE set, ...).
// need_rendezvous = false (collection workers, which never talk to each other): MASTER_* are optional.
LaunchEnv launch_env_from(const std::map<std::string, std::string>& vars, bool need_rendezvous = true);
LaunchEnv launch_env_from_environment(bool need_rendezvous = true);

}  // namespace bkd

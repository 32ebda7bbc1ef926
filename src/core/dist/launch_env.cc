#include "core/dist/launch_env.h"

#include <algorithm>
#include <cstdlib>

#include "core/util/error.h"

namespace bkd {
namespace {

const char* kFix = "set RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT as torchrun does (or use `train --nproc N`)";

// A non-negative decimal integer below `limit`, or a UsageError naming the variable.
int parse_count(const std::string& name, const std::string& value, long limit) {
  if (value.empty() || value.size() > 9 || value.find_first_not_of("0123456789") != std::string::npos)
    throw UsageError(name + "='" + value + "' is not a non-negative integer", kFix);
  const long v = std::stol(value);
  if (v >= limit) throw UsageError(name + "=" + value + " is out of range (must be below " + std::to_string(limit) + ")", kFix);
  return int(v);
}

}  // namespace

std::string LaunchEnv::describe() const {
  if (!distributed()) return "one process";
  return "rank " + std::to_string(rank) + " of " + std::to_string(world_size) + " (local " + std::to_string(local_rank) +
         "), rendezvous " + master_addr + ":" + std::to_string(master_port);
}

LaunchEnv launch_env_from(const std::map<std::string, std::string>& vars, bool need_rendezvous) {
  auto get = [&](const char* k) -> const std::string* {
    auto it = vars.find(k);
    return it == vars.end() ? nullptr : &it->second;
  };
  LaunchEnv e;
  const std::string *rank = get("RANK"), *world = get("WORLD_SIZE");
  if (!rank && !world) return e;
  if (!rank || !world)
    throw UsageError(std::string(rank ? "RANK" : "WORLD_SIZE") + " is set but " + (rank ? "WORLD_SIZE" : "RANK") +
                         " is not",
                     kFix);
  e.world_size = parse_count("WORLD_SIZE", *world, 1 << 20);
  if (e.world_size < 1) throw UsageError("WORLD_SIZE=0: there must be at least one rank", kFix);
  e.rank = parse_count("RANK", *rank, e.world_size);
  e.local_rank = get("LOCAL_RANK") ? parse_count("LOCAL_RANK", *get("LOCAL_RANK"), 1 << 20) : e.rank;
  if (get("LOCAL_WORLD_SIZE")) e.local_world_size = std::max(1, parse_count("LOCAL_WORLD_SIZE", *get("LOCAL_WORLD_SIZE"), 1 << 20));
  if (!e.distributed() || !need_rendezvous) return e;
  const std::string *addr = get("MASTER_ADDR"), *port = get("MASTER_PORT");
  if (!addr || addr->empty()) throw UsageError("WORLD_SIZE=" + *world + " but MASTER_ADDR is not set", kFix);
  if (!port) throw UsageError("WORLD_SIZE=" + *world + " but MASTER_PORT is not set", kFix);
  e.master_addr = *addr;
  e.master_port = parse_count("MASTER_PORT", *port, 65536);
  if (e.master_port == 0) throw UsageError("MASTER_PORT=0: rank 0 listens on a fixed port the others can reach", kFix);
  return e;
}

LaunchEnv launch_env_from_environment(bool need_rendezvous) {
  std::map<std::string, std::string> vars;
  for (const char* k : {"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"})
    if (const char* v = std::getenv(k)) vars[k] = v;
  return launch_env_from(vars, need_rendezvous);
}

}  // namespace bkd

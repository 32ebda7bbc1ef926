#pragma once
// Data-parallel collectives on PyTorch's c10d: a TCPStore rendezvous at MASTER_ADDR:MASTER_PORT (rank
// 0 hosts it) and a Gloo process group (NCCL when built against a CUDA LibTorch with NCCL). Gradients
// are averaged in flat buckets after backward: all buckets are launched, then awaited, so the
// transfers of one overlap the packing of the next (not the backward pass itself; docs/SCALING.md).
//
// Faults: every collective runs under DIST_TIMEOUT_S. When one fails (a peer died, hangs or is
// unreachable), the error names the ranks that stopped: each rank bumps a heartbeat counter in the
// store every second from its own connection, and the failing rank reads who stopped counting.
#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/dist/launch_env.h"

namespace c10d {
class Store;
class ProcessGroup;
}  // namespace c10d

namespace bkd {

class DistGroup {
 public:
  // Blocks until every rank has arrived (or throws after `timeout`, naming the ranks missing).
  static std::unique_ptr<DistGroup> connect(const LaunchEnv& env, std::chrono::milliseconds timeout, bool cuda);
  ~DistGroup();
  DistGroup(const DistGroup&) = delete;
  DistGroup& operator=(const DistGroup&) = delete;

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  const std::string& backend() const { return backend_; }

  // Every parameter's gradient becomes the mean over ranks (an undefined gradient counts as zeros).
  // Buckets hold at most `bucket_bytes` of one dtype. Returns the seconds spent, packing included.
  double average_gradients(const std::vector<torch::Tensor>& params, int64_t bucket_bytes = 25 << 20);
  // Element-wise sum over ranks (per-step statistics: losses, token counts, non-finite flags).
  std::vector<double> sum(const std::vector<double>& values, const std::string& what);
  // Rank 0's values replace everyone's (the starting weights).
  void broadcast_from_rank0(const std::vector<torch::Tensor>& tensors);
  void barrier(const std::string& what);

 private:
  DistGroup(LaunchEnv env, std::chrono::milliseconds timeout);
  template <class F>
  void guarded(const std::string& what, F&& op);
  std::string diagnose_peers();
  void start_heartbeat();

  LaunchEnv env_;
  std::chrono::milliseconds timeout_;
  std::string backend_;
  bool stage_through_host_ = false;  // CUDA tensors over Gloo: buckets travel through host memory
  c10::intrusive_ptr<c10d::Store> store_;       // the process group's connection
  c10::intrusive_ptr<c10d::Store> side_store_;  // heartbeats and diagnosis, never the group's socket
  c10::intrusive_ptr<c10d::ProcessGroup> group_;
  std::atomic<bool> stop_{false};
  std::thread heartbeat_;
};

// True when this build can form a process group (Gloo headers were found at build time).
bool dist_available();

}  // namespace bkd

#include "torch/dist/dist_group.h"

#ifdef BKD_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef BKD_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <map>

#include "core/util/error.h"
#include "core/util/log.h"
#include "core/util/sysinfo.h"

namespace bkd {

bool dist_available() {
#ifdef BKD_WITH_GLOO
  return true;
#else
  return false;
#endif
}

#ifndef BKD_WITH_GLOO

std::unique_ptr<DistGroup> DistGroup::connect(const LaunchEnv& env, std::chrono::milliseconds, bool) {
  throw Error("WORLD_SIZE=" + std::to_string(env.world_size) +
                  " asks for data-parallel training, but this build has no c10d Gloo support "
                  "(the Gloo headers were not found at build time)",
              "install libgloo-dev (Debian) and rebuild, or run one process");
}
DistGroup::~DistGroup() = default;
double DistGroup::average_gradients(const std::vector<torch::Tensor>&, int64_t) { return 0; }
std::vector<double> DistGroup::sum(const std::vector<double>& v, const std::string&) { return v; }
void DistGroup::broadcast_from_rank0(const std::vector<torch::Tensor>&) {}
void DistGroup::barrier(const std::string&) {}

#else

namespace {

std::string beat_key(int rank) { return "bkd/heartbeat/" + std::to_string(rank); }

// c10::Error messages carry a C++ backtrace after the first line.
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

bool is_loopback(const std::string& addr) { return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1"; }

std::shared_ptr<::gloo::transport::Device> gloo_device(const LaunchEnv& env) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname)
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (is_loopback(env.master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();  // this host's name, as other machines resolve it
}

c10::intrusive_ptr<c10d::Store> store_client(const LaunchEnv& env, bool server, std::chrono::milliseconds timeout) {
  c10d::TCPStoreOptions o;
  o.port = uint16_t(env.master_port);
  o.isServer = server;
  o.numWorkers = size_t(env.world_size);
  o.waitWorkers = false;  // arrival is checked below, with a message that names the missing ranks
  o.timeout = timeout;
  return c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
}

}  // namespace

DistGroup::DistGroup(LaunchEnv env, std::chrono::milliseconds timeout) : env_(std::move(env)), timeout_(timeout) {}

std::unique_ptr<DistGroup> DistGroup::connect(const LaunchEnv& env, std::chrono::milliseconds timeout, bool cuda) {
  std::unique_ptr<DistGroup> g(new DistGroup(env, timeout));
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    g->store_ = store_client(env, env.rank == 0, timeout);
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(env.rank) + ": cannot reach the rendezvous store at " + where +
                    (env.rank == 0 ? " (this rank hosts it: is the port free?)" : " (rank 0 hosts it: is it running?)") +
                    ": " + first_line(e.what()),
                "check MASTER_ADDR/MASTER_PORT and that rank 0 started; DIST_TIMEOUT_S sets how long to wait");
  }
  g->side_store_ = store_client(env, false, std::chrono::milliseconds(5000));
  g->start_heartbeat();
  // Arrival: every rank checks in, then waits for the others (named when they do not come).
  g->store_->set("bkd/arrived/" + std::to_string(env.rank), {1});
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int r = 0; r < env.world_size; ++r) {
    while (!g->store_->check({"bkd/arrived/" + std::to_string(r)})) {
      if (std::chrono::steady_clock::now() > deadline) {
        std::string missing;
        for (int m = r; m < env.world_size; ++m)
          if (!g->store_->check({"bkd/arrived/" + std::to_string(m)})) missing += (missing.empty() ? "" : ", ") + std::to_string(m);
        throw Error("rendezvous at " + where + ": rank(s) " + missing + " of " + std::to_string(env.world_size) +
                        " did not arrive within " + std::to_string(timeout.count() / 1000) + " s",
                    "start every rank with the same MASTER_ADDR/MASTER_PORT and WORLD_SIZE; DIST_TIMEOUT_S sets the wait");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
#ifdef BKD_WITH_NCCL
  if (cuda) {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = timeout;
    g->group_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store_, env.rank, env.world_size, opts);
    g->backend_ = "nccl";
  }
#endif
  if (!g->group_) {
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    opts->devices.push_back(gloo_device(env));
    g->guarded("connecting the Gloo group", [&] {
      g->group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store_, env.rank, env.world_size, opts);
    });
    g->backend_ = "gloo";
    g->stage_through_host_ = cuda;
  }
  log_info("dist: " + env.describe() + ", backend " + g->backend_ + (g->stage_through_host_ ? " (CUDA buckets through host memory)" : ""));
  return g;
}

DistGroup::~DistGroup() {
  stop_ = true;
  if (heartbeat_.joinable()) heartbeat_.join();
  group_.reset();
  side_store_.reset();
  store_.reset();
}

void DistGroup::start_heartbeat() {
  heartbeat_ = std::thread([this] {
    while (!stop_) {
      try {
        side_store_->add(beat_key(env_.rank), 1);
      } catch (...) {  // rank 0 (the store) is gone: the next collective reports it
      }
      for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
}

// Which peers stopped beating: read every counter, wait 2.5 heartbeats, read again.
std::string DistGroup::diagnose_peers() {
  std::map<int, int64_t> first;
  try {
    for (int r = 0; r < env_.world_size; ++r)
      if (r != env_.rank) first[r] = side_store_->add(beat_key(r), 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    std::string stopped;
    for (auto& [r, n] : first)
      if (side_store_->add(beat_key(r), 0) == n) stopped += (stopped.empty() ? "" : ", ") + std::to_string(r);
    if (stopped.empty()) return "every peer is still alive (a peer is stuck or slower than DIST_TIMEOUT_S)";
    return "rank(s) " + stopped + " stopped (died, were killed, or hang)";
  } catch (const std::exception&) {
    return env_.rank == 0 ? "the peers cannot be asked" : "rank 0, which hosts the rendezvous store, is gone (died or unreachable)";
  }
}

template <class F>
void DistGroup::guarded(const std::string& what, F&& op) {
  try {
    op();
  } catch (const std::exception& e) {
    const std::string cause = first_line(e.what());
    throw Error("rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.world_size) + ": " + what +
                    " failed: " + diagnose_peers() + " [" + backend_ + ": " + cause + "]",
                "resume every rank with --resume after fixing the failed one (any world size works); DIST_TIMEOUT_S "
                "sets how long a rank waits for the others");
  }
}

double DistGroup::average_gradients(const std::vector<torch::Tensor>& params, int64_t bucket_bytes) {
  Timer timer;
  torch::NoGradGuard ng;
  // Buckets: runs of parameters of one dtype and device, in parameter order (the same on every rank).
  struct Bucket {
    std::vector<size_t> members;
    torch::Tensor flat;
  };
  std::vector<Bucket> buckets;
  int64_t bytes = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    auto& p = params[i];
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    const int64_t b = p.numel() * int64_t(p.element_size());
    const bool fits = !buckets.empty() && bytes + b <= bucket_bytes &&
                      params[buckets.back().members.front()].grad().scalar_type() == p.grad().scalar_type();
    if (!fits) buckets.emplace_back(), bytes = 0;
    buckets.back().members.push_back(i);
    bytes += b;
  }
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& bk : buckets) {
    std::vector<torch::Tensor> views;
    for (size_t i : bk.members) views.push_back(params[i].grad().reshape({-1}));
    bk.flat = torch::cat(views);
    if (stage_through_host_) bk.flat = bk.flat.cpu();
    std::vector<torch::Tensor> one{bk.flat};
    guarded("gradient all-reduce", [&] { works.push_back(group_->allreduce(one)); });
  }
  for (auto& w : works) guarded("gradient all-reduce", [&] { w->wait(); });
  for (auto& bk : buckets) {
    bk.flat.div_(double(env_.world_size));
    int64_t at = 0;
    for (size_t i : bk.members) {
      auto& g = params[i].mutable_grad();
      g.copy_(bk.flat.narrow(0, at, g.numel()).view_as(g));
      at += g.numel();
    }
  }
  return timer.seconds();
}

std::vector<double> DistGroup::sum(const std::vector<double>& values, const std::string& what) {
  std::vector<torch::Tensor> t{torch::tensor(values, torch::kDouble)};
  guarded(what, [&] { group_->allreduce(t)->wait(); });
  auto acc = t[0].accessor<double, 1>();
  std::vector<double> out(values.size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = acc[int64_t(i)];
  return out;
}

void DistGroup::broadcast_from_rank0(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard ng;
  for (const auto& src : tensors) {
    std::vector<torch::Tensor> t{stage_through_host_ ? src.detach().cpu() : src.detach()};
    guarded("broadcast of the starting weights", [&] { group_->broadcast(t)->wait(); });
    if (stage_through_host_) src.detach().copy_(t[0]);
  }
}

void DistGroup::barrier(const std::string& what) {
  guarded(what, [&] { group_->barrier()->wait(); });
}

#endif  // BKD_WITH_GLOO

}  // namespace bkd

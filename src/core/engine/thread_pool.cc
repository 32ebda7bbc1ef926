#include "core/engine/thread_pool.h"

#include <algorithm>
#include <cstdlib>

#include "core/util/error.h"
#include "core/util/sysinfo.h"

namespace bkd {
namespace {
inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}
// Pause iterations a thread spins before it sleeps (workers) or yields (the caller); BKD_POOL_SPIN
// overrides, for measurements. Short on purpose: on a machine shared with other work a spinning
// thread burns the CPU share its own next chunk needs, and a sleeper woken by the next region gets
// the CPU back promptly. On the 7B dry-run under load ~11 on 2 cores, 200 instead of 20000 took the
// decode CPU time per byte from 1.55x to 1.28x the bandwidth probe's (wall: paired median 1.78x -> 1.41x).
int spin_iterations() {
  static const int n = [] {
    const char* e = std::getenv("BKD_POOL_SPIN");
    return e && *e ? std::max(0, std::atoi(e)) : 200;
  }();
  return n;
}
inline uint32_t gen_of(uint64_t s) { return static_cast<uint32_t>(s >> 32); }
}  // namespace

ThreadPool::ThreadPool(int threads) {
  const int n = threads > 0 ? threads : std::max(1, cpu_cores());
  for (int i = 1; i < n; ++i) workers_.emplace_back([this] { worker(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// Claims and runs chunks of region `gen` until none are left (or another region has begun).
void ThreadPool::drain(uint32_t gen) {
  uint64_t s = state_.load(std::memory_order_acquire);
  while (gen_of(s) == gen) {
    const uint64_t n = (s >> 16) & 0xffff, i = s & 0xffff;
    if (i >= n) return;
    if (!state_.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel)) continue;
    // Region `gen` cannot finish before this chunk does, so job_ still holds its function.
    (*job_.load(std::memory_order_acquire))(static_cast<int64_t>(i));
    done_.fetch_add(1, std::memory_order_acq_rel);
    s = state_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run(int64_t n, ChunkFn fn) {
  if (n <= 0) return;
  if (n > kMaxChunks) throw Error("thread pool region of " + std::to_string(n) + " chunks exceeds the limit");
  if (workers_.empty() || n == 1) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  const uint32_t gen = gen_of(state_.load()) + 1;
  done_.store(0, std::memory_order_relaxed);
  job_.store(&fn, std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_.store(static_cast<uint64_t>(gen) << 32 | static_cast<uint64_t>(n) << 16, std::memory_order_release);
  }
  wake_.notify_all();
  drain(gen);
  const int spins = spin_iterations();
  for (int spin = 0; done_.load(std::memory_order_acquire) != n; ++spin)
    if (spin < spins) cpu_relax();
    else std::this_thread::yield();
}

void ThreadPool::worker() {
  uint32_t seen = 0;
  const int spins = spin_iterations();
  for (;;) {
    for (int spin = 0; spin < spins && gen_of(state_.load(std::memory_order_acquire)) == seen && !stop_; ++spin)
      cpu_relax();
    if (gen_of(state_.load(std::memory_order_acquire)) == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || gen_of(state_.load()) != seen; });
    }
    if (stop_) return;
    seen = gen_of(state_.load(std::memory_order_acquire));
    drain(seen);
  }
}

}  // namespace bkd

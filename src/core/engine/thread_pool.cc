#include "core/engine/thread_pool.h"

#include "core/util/sysinfo.h"

namespace bkd {
namespace {
inline void cpu_relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}
constexpr int kSpinIterations = 20000;  // ~ tens of microseconds before a worker sleeps
}  // namespace

ThreadPool::ThreadPool(int threads) {
  const int n = threads > 0 ? threads : std::max(1, cpu_cores());
  for (int i = 1; i < n; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run(const std::function<void(int)>& fn) {
  if (workers_.empty()) {
    fn(0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &fn;
    pending_.store(static_cast<int>(workers_.size()));
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  fn(0);
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin)
    if (spin < kSpinIterations) cpu_relax();
    else std::this_thread::yield();
}

void ThreadPool::worker(int id) {
  uint64_t seen = 0;
  for (;;) {
    for (int spin = 0; spin < kSpinIterations && generation_.load(std::memory_order_acquire) == seen; ++spin)
      cpu_relax();
    if (generation_.load(std::memory_order_acquire) == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_) return;
    const std::function<void(int)>* job;
    {
      std::lock_guard<std::mutex> lock(mu_);
      job = job_;
    }
    (*job)(id);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace bkd

#pragma once
// A small fork-join pool for the engine. run(n, fn) calls fn(i) for every chunk i in [0, n) and
// returns when all are done. Chunks are claimed dynamically and the calling thread always takes
// part: on a busy machine a worker the OS has not scheduled costs only the chunk it has claimed,
// not the whole region (with static per-thread slices one descheduled worker stalls every one of
// the few hundred regions a decode step issues). Threads spin very briefly, then sleep (workers) or
// yield (the caller): see spin_iterations() in thread_pool.cc.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bkd {

class ThreadPool {
 public:
  static constexpr int64_t kMaxChunks = 65535;

  explicit ThreadPool(int threads);  // <= 0: one per online CPU
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // n <= kMaxChunks.
  void run(int64_t n, const std::function<void(int64_t)>& fn);

 private:
  void worker();
  void drain(uint32_t gen);

  std::vector<std::thread> workers_;
  // gen (32 bits) | chunk count (16) | next unclaimed chunk (16): one word, so a claim can never
  // pair a chunk index with another region's count or function.
  std::atomic<uint64_t> state_{0};
  std::atomic<const std::function<void(int64_t)>*> job_{nullptr};
  std::atomic<int64_t> done_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable wake_;
};

// [begin, end) of part `i` of `parts` near-equal slices of [0, total), with slice edges on
// multiples of `align` (except the last).
inline void split_range(int64_t total, int64_t parts, int64_t i, int64_t align, int64_t* begin, int64_t* end) {
  const int64_t units = (total + align - 1) / align;
  const int64_t b = units * i / parts, e = units * (i + 1) / parts;
  *begin = b * align < total ? b * align : total;
  *end = e * align < total ? e * align : total;
}

}  // namespace bkd

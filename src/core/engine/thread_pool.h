#pragma once
// A small fork-join pool for the engine: run(fn) calls fn(t) once on each of size() threads (the
// caller is thread 0) and returns when all are done. Static partitions suit the engine's work
// (rows of a matrix, heads of attention), and decode issues a few hundred regions per token, so
// workers spin briefly before sleeping to keep the hand-off cheap.
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
  explicit ThreadPool(int threads);  // <= 0: one per online CPU
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  void run(const std::function<void(int)>& fn);

 private:
  void worker(int id);

  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable wake_;
};

// [begin, end) of part `i` of `parts` near-equal slices of [0, total), with slice edges on
// multiples of `align` (except the last).
inline void split_range(int64_t total, int parts, int i, int64_t align, int64_t* begin, int64_t* end) {
  const int64_t units = (total + align - 1) / align;
  const int64_t b = units * i / parts, e = units * (i + 1) / parts;
  *begin = std::min(total, b * align);
  *end = std::min(total, e * align);
}

}  // namespace bkd

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
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace bkd {

// A non-owning reference to a callable taking the chunk index: a region's function lives on the
// caller's stack for the whole region, so nothing is copied or allocated per region (a decode
// step of a small model issues ~30 regions, each a few microseconds).
class ChunkFn {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, ChunkFn>>>
  ChunkFn(const F& f) : obj_(&f), call_([](const void* o, int64_t i) { (*static_cast<const F*>(o))(i); }) {}
  void operator()(int64_t i) const { call_(obj_, i); }

 private:
  const void* obj_;
  void (*call_)(const void*, int64_t);
};

class ThreadPool {
 public:
  static constexpr int64_t kMaxChunks = 65535;

  explicit ThreadPool(int threads);  // <= 0: one per online CPU
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }
  // n <= kMaxChunks.
  void run(int64_t n, ChunkFn fn);

 private:
  void worker();
  void drain(uint32_t gen);

  std::vector<std::thread> workers_;
  // gen (32 bits) | chunk count (16) | next unclaimed chunk (16): one word, so a claim can never
  // pair a chunk index with another region's count or function.
  std::atomic<uint64_t> state_{0};
  std::atomic<const ChunkFn*> job_{nullptr};
  std::atomic<int64_t> done_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable wake_;
};

// How many chunks a region of `work_bytes` (bytes streamed, or the equivalent in arithmetic) should
// have on `threads` threads: 1 (run on the caller, no hand-off) below kParallelMinBytes, else about
// kChunkBytes each, at most 16 per thread. The threshold is what a hand-off costs: waking a worker
// that has gone to sleep takes 4-18 us on a 2-core VM (0.8 us when it is still spinning), and one
// core streams ~1 MiB in ~35 us, so splitting less than that saves no more than the wake-up costs.
constexpr int64_t kParallelMinBytes = int64_t{1} << 20;
constexpr int64_t kChunkBytes = int64_t{256} << 10;
// `min_bytes` replaces kParallelMinBytes (tests set 0 to split even tiny regions).
inline int64_t work_chunks(int64_t work_bytes, int threads, int64_t min_bytes = kParallelMinBytes) {
  if (threads <= 1 || work_bytes < min_bytes) return 1;
  const int64_t by_size = work_bytes / kChunkBytes;
  return by_size < 2 ? 2 : by_size < 16 * threads ? by_size : 16 * threads;
}

// [begin, end) of part `i` of `parts` near-equal slices of [0, total), with slice edges on
// multiples of `align` (except the last).
inline void split_range(int64_t total, int64_t parts, int64_t i, int64_t align, int64_t* begin, int64_t* end) {
  const int64_t units = (total + align - 1) / align;
  const int64_t b = units * i / parts, e = units * (i + 1) / parts;
  *begin = b * align < total ? b * align : total;
  *end = e * align < total ? e * align : total;
}

}  // namespace bkd

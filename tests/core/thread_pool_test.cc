// The engine's fork-join pool: every chunk of every region runs exactly once, and a thread stuck in
// one chunk costs only that chunk (the others claim the rest).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "core/engine/thread_pool.h"

namespace bkd {
namespace {

TEST(ThreadPool, EveryChunkOfEveryRegionRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t n : {1, 2, 3, 5, 16, 17, 64, 1000}) {
      for (int region = 0; region < 20; ++region) {  // back-to-back regions reuse the slices
        std::vector<std::atomic<int>> runs(static_cast<size_t>(n));
        pool.run(n, [&](int64_t i) { runs[static_cast<size_t>(i)].fetch_add(1); });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(runs[static_cast<size_t>(i)].load(), 1) << threads << " threads, n " << n << ", chunk " << i;
      }
    }
  }
}

TEST(ThreadPool, AThreadStuckInOneChunkCostsOnlyThatChunk) {
  // Chunk 0 (the caller's first) waits until every other chunk is done: with static per-thread
  // slices, the rest of the caller's slice would never run and this would time out.
  ThreadPool pool(2);
  const int64_t n = 16;
  std::atomic<int64_t> others{0};
  std::atomic<bool> timed_out{false};
  pool.run(n, [&](int64_t i) {
    if (i != 0) {
      others.fetch_add(1);
      return;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (others.load() < n - 1)
      if (std::chrono::steady_clock::now() > deadline) {
        timed_out = true;
        return;
      } else {
        std::this_thread::yield();
      }
  });
  EXPECT_FALSE(timed_out) << "the other thread did not claim the chunks the stuck thread had not started";
  EXPECT_EQ(others.load(), n - 1);
}

}  // namespace
}  // namespace bkd

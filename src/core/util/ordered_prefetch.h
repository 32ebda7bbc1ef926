#pragma once
// One item ahead on a second thread: produce(i) for i = first, first + 1, ... < end runs on one
// long-lived thread (LibTorch and OpenMP keep per-thread pools, so the thread is not recreated) and
// hands its results over a one-slot queue, in order. take() returns the next result, or rethrows
// what produce threw. Destroying the prefetcher stops the thread after its current item.
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

namespace bkd {

template <typename T>
class OrderedPrefetch {
 public:
  OrderedPrefetch(size_t first, size_t end, std::function<T(size_t)> produce) : produce_(std::move(produce)) {
    thread_ = std::thread([this, first, end] { run(first, end); });
  }
  OrderedPrefetch(const OrderedPrefetch&) = delete;
  OrderedPrefetch& operator=(const OrderedPrefetch&) = delete;
  ~OrderedPrefetch() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  T take() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return slot_.has_value() || error_; });
    if (!slot_) std::rethrow_exception(error_);
    T t = std::move(*slot_);
    slot_.reset();
    cv_.notify_all();
    return t;
  }

 private:
  void run(size_t first, size_t end) {
    try {
      for (size_t i = first; i < end; ++i) {
        T t = produce_(i);
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return !slot_.has_value() || stop_; });
        if (stop_) return;
        slot_ = std::move(t);
        cv_.notify_all();
      }
    } catch (...) {
      std::lock_guard<std::mutex> lock(mu_);
      error_ = std::current_exception();
      cv_.notify_all();
    }
  }

  std::function<T(size_t)> produce_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<T> slot_;
  std::exception_ptr error_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace bkd

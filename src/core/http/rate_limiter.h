#pragma once
// Client-side limits, so we stay under a provider's budget instead of bouncing off its 429s:
// a token bucket (requests/min or tokens/min) and a cap on requests in flight.
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace bkd {

// Continuous-refill token bucket. `rate_per_min` <= 0 disables it. Capacity is the burst allowed
// after idling (at least 1 unit). acquire(n) waits until the level covers min(n, capacity), then
// takes n (the level may go negative: a request larger than the burst borrows from the future).
class TokenBucket {
 public:
  TokenBucket(double rate_per_min, double capacity);
  // Returns the seconds spent waiting.
  double acquire(double n);
  bool enabled() const { return rate_per_s_ > 0; }

 private:
  void refill_locked();
  std::mutex mu_;
  double rate_per_s_, capacity_, level_;
  double last_s_;
};

// Counting semaphore for requests in flight.
class InFlightLimit {
 public:
  explicit InFlightLimit(int max_in_flight) : max_(max_in_flight < 1 ? 1 : max_in_flight) {}
  void acquire();
  void release();
  int max() const { return max_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int max_, used_ = 0;
};

class InFlightSlot {
 public:
  explicit InFlightSlot(InFlightLimit& l) : l_(l) { l_.acquire(); }
  ~InFlightSlot() { l_.release(); }
  InFlightSlot(const InFlightSlot&) = delete;
  InFlightSlot& operator=(const InFlightSlot&) = delete;

 private:
  InFlightLimit& l_;
};

double monotonic_seconds();

}  // namespace bkd

#include "core/http/rate_limiter.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace bkd {

double monotonic_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

TokenBucket::TokenBucket(double rate_per_min, double capacity)
    : rate_per_s_(rate_per_min > 0 ? rate_per_min / 60.0 : 0),
      capacity_(std::max(1.0, capacity)),
      level_(capacity_),
      last_s_(monotonic_seconds()) {}

void TokenBucket::refill_locked() {
  double now = monotonic_seconds();
  level_ = std::min(capacity_, level_ + (now - last_s_) * rate_per_s_);
  last_s_ = now;
}

double TokenBucket::acquire(double n) {
  if (!enabled()) return 0;
  const double need = std::min(n, capacity_);
  double waited = 0;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    refill_locked();
    if (level_ >= need) break;
    double wait_s = (need - level_) / rate_per_s_;
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::duration<double>(wait_s));
    waited += wait_s;
    lock.lock();
  }
  level_ -= n;
  return waited;
}

void InFlightLimit::acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return used_ < max_; });
  ++used_;
}

void InFlightLimit::release() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    --used_;
  }
  cv_.notify_one();
}

}  // namespace bkd

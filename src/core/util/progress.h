#pragma once
// Progress for long work: count, rate, ETA. Redraws one line on a terminal, prints a plain line
// every few seconds otherwise (CI logs stay readable).
#include <cstdint>
#include <string>

#include "core/util/sysinfo.h"

namespace bkd {

class Progress {
 public:
  Progress(std::string label, uint64_t total, std::string unit = "items");
  void add(uint64_t n, const std::string& extra = {});
  void set(uint64_t done, const std::string& extra = {});
  void finish(const std::string& extra = {});
  double rate() const;  // units per second so far

 private:
  void draw(bool final, const std::string& extra);
  std::string label_, unit_;
  uint64_t total_, done_ = 0;
  Timer timer_;
  double last_draw_ = -1e9;
  bool tty_;
};

std::string format_duration(double seconds);  // "1h02m", "3m05s", "12.3s"

}  // namespace bkd

#include "core/util/progress.h"

#include <unistd.h>

#include <cstdio>

#include "core/util/log.h"

namespace bkd {

std::string format_duration(double s) {
  char buf[32];
  if (s < 0 || s != s) return "?";
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
  return buf;
}

Progress::Progress(std::string label, uint64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(::isatty(2)) {}

void Progress::add(uint64_t n, const std::string& extra) { set(done_ + n, extra); }

void Progress::set(uint64_t done, const std::string& extra) {
  done_ = done;
  const double now = timer_.seconds();
  if (now - last_draw_ >= (tty_ ? 0.2 : 5.0)) {
    last_draw_ = now;
    draw(false, extra);
  }
}

void Progress::finish(const std::string& extra) { draw(true, extra); }

double Progress::rate() const {
  const double t = timer_.seconds();
  return t > 0 ? done_ / t : 0.0;
}

void Progress::draw(bool final, const std::string& extra) {
  const double r = rate();
  char line[256];
  if (total_ > 0) {
    const double eta = r > 0 ? (total_ - std::min(done_, total_)) / r : -1;
    std::snprintf(line, sizeof line, "%s: %llu/%llu %s (%.1f%%) %.1f %s/s ETA %s", label_.c_str(),
                  (unsigned long long)done_, (unsigned long long)total_, unit_.c_str(),
                  100.0 * done_ / total_, r, unit_.c_str(), final ? "done" : format_duration(eta).c_str());
  } else {
    std::snprintf(line, sizeof line, "%s: %llu %s %.1f %s/s", label_.c_str(), (unsigned long long)done_,
                  unit_.c_str(), r, unit_.c_str());
  }
  std::string text = redact(std::string(line) + (extra.empty() ? "" : " " + extra));
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s%s", text.c_str(), final ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  std::fflush(stderr);
}

}  // namespace bkd

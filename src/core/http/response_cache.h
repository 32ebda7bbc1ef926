#pragma once
// Content-addressed cache of successful HTTP responses on disk, so re-runs and resumes never pay
// twice. Key = SHA-256 over method, URL and body only: keys travel in headers and are never part
// of the key or of the stored entry. Entries are written atomically (temp file + rename).
#include <optional>
#include <string>

namespace bkd {

struct CachedResponse {
  int status = 0;
  std::string body;
  double elapsed_s = 0;  // what the original request took (reports can still show real latency)
  double ttfb_s = -1;    // time to the first response byte of the original request
  double first_token_s = -1;  // streaming: time to the first token of the original request
  std::string stored_at; // ISO-8601 UTC
};

class ResponseCache {
 public:
  // An empty dir disables the cache.
  // Sweeps temp files that a killed writer left in `dir` (they are never read, only clutter).
  explicit ResponseCache(std::string dir);
  bool enabled() const { return !dir_.empty(); }

  static std::string key(const std::string& method, const std::string& url, const std::string& body);
  std::string path_for(const std::string& key) const;  // <dir>/<k[0:2]>/<k>.json

  std::optional<CachedResponse> get(const std::string& key) const;  // a corrupt entry reads as a miss
  void put(const std::string& key, const CachedResponse& r) const;

 private:
  std::string dir_;
};

}  // namespace bkd

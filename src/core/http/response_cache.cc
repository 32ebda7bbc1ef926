#include "core/http/response_cache.h"

#include <nlohmann/json.hpp>

#include "core/util/fs.h"
#include "core/util/hash.h"
#include "core/util/log.h"

namespace bkd {

ResponseCache::ResponseCache(std::string dir) : dir_(std::move(dir)) {
  if (!enabled()) return;
  if (const int n = remove_orphan_temp_files(dir_); n > 0)
    log_info("response cache: removed " + std::to_string(n) + " temp file(s) left by killed runs in " + dir_);
}

std::string ResponseCache::key(const std::string& method, const std::string& url, const std::string& body) {
  Sha256 h;
  // Length-prefixed fields, so ("a", "bc") and ("ab", "c") never collide.
  for (const std::string* part : {&method, &url, &body}) {
    h.update(std::to_string(part->size()) + ":");
    h.update(*part);
  }
  return h.hex_digest();
}

std::string ResponseCache::path_for(const std::string& key) const {
  return join_path(join_path(dir_, key.substr(0, 2)), key + ".json");
}

std::optional<CachedResponse> ResponseCache::get(const std::string& key) const {
  if (!enabled()) return std::nullopt;
  const std::string path = path_for(key);
  if (!file_exists(path)) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(read_file(path));
    CachedResponse r;
    r.status = j.at("status").get<int>();
    r.body = j.at("body").get<std::string>();
    r.elapsed_s = j.value("elapsed_s", 0.0);
    r.ttfb_s = j.value("ttfb_s", -1.0);
    r.first_token_s = j.value("first_token_s", -1.0);
    r.stored_at = j.value("stored_at", std::string());
    return r;
  } catch (const std::exception& e) {
    log_warn("response cache: ignoring unreadable entry " + path + ": " + e.what());
    return std::nullopt;
  }
}

void ResponseCache::put(const std::string& key, const CachedResponse& r) const {
  if (!enabled()) return;
  const std::string path = path_for(key);
  ensure_dir(parent_dir(path));
  nlohmann::json j = {{"status", r.status},
                      {"elapsed_s", r.elapsed_s},
                      {"ttfb_s", r.ttfb_s},
                      {"first_token_s", r.first_token_s},
                      {"stored_at", r.stored_at},
                      {"body", r.body}};
  // Bodies are provider JSON (UTF-8); replace rather than throw on stray invalid bytes.
  write_file_atomic(path, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

}  // namespace bkd

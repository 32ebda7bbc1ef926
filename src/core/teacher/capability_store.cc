#include "core/teacher/capability_store.h"

#include <cctype>

#include <nlohmann/json.hpp>

#include "core/util/fs.h"
#include "core/util/hash.h"
#include "core/util/log.h"
#include "core/util/json_file.h"
#include "core/util/sysinfo.h"

namespace bkd {

std::string CapabilityStore::path(const std::string& provider, const std::string& base_url,
                                  const std::string& model) const {
  std::string safe;
  for (char c : model) safe.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_');
  const std::string id = sha256_hex(provider + "\n" + base_url + "\n" + model).substr(0, 12);
  return join_path(join_path(dir_, provider), safe.substr(0, 80) + "-" + id + ".json");
}

std::optional<Capabilities> CapabilityStore::load(const std::string& provider, const std::string& base_url,
                                                  const std::string& model) const {
  if (dir_.empty()) return std::nullopt;
  const std::string p = path(provider, base_url, model);
  if (!file_exists(p)) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(read_file(p));
    Capabilities c = Capabilities::from_json(j.at("capabilities"));
    if (c.probed_at.substr(0, 10) != iso8601_utc_now().substr(0, 10)) return std::nullopt;  // another day
    c.source = "cache";
    return c;
  } catch (const std::exception& e) {
    log_warn("capability cache: ignoring unreadable " + p + ": " + e.what());
    return std::nullopt;
  }
}

void CapabilityStore::save(const std::string& provider, const std::string& base_url, const std::string& model,
                           const Capabilities& caps) const {
  if (dir_.empty()) return;
  const std::string p = path(provider, base_url, model);
  ensure_dir(parent_dir(p));
  write_json_atomic(p, {{"provider", provider}, {"base_url", base_url}, {"model", model},
                        {"capabilities", caps.to_json()}});
}

}  // namespace bkd

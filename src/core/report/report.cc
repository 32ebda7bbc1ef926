#include "core/report/report.h"

#include "build_info.h"
#include "core/config/settings.h"
#include "core/util/fs.h"
#include "core/util/log.h"

namespace bkd {

nlohmann::json machine_info() {
  return {{"cpu_model", cpu_model()},
          {"cores", cpu_cores()},
          {"isa", cpu_features().names()},
          {"ram_bytes", total_ram_bytes()}};
}

Report::Report(std::string kind, const Settings* settings)
    : kind_(std::move(kind)), started_at_(iso8601_utc_now()) {
  if (settings) {
    settings_hash_ = settings->hash();
    preset_ = settings->preset();
  }
}

nlohmann::json Report::write(const std::string& path) {
  nlohmann::json j = body_;
  j["_meta"] = {{"report", kind_},
                {"tool", "bitnet-kde"},
                {"version", BKD_VERSION},
                {"git_commit", BKD_GIT_COMMIT},
                {"settings_hash", settings_hash_},
                {"preset", preset_},
                {"machine", machine_info()},
                {"started_at", started_at_},
                {"ended_at", iso8601_utc_now()},
                {"wall_seconds", timer_.seconds()},
                {"peak_rss_bytes", peak_rss_bytes()}};
  write_json_atomic(path, j);
  return j;
}

}  // namespace bkd

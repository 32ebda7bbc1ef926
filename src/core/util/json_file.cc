#include "core/util/json_file.h"

#include "core/util/fs.h"
#include "core/util/log.h"

namespace bkd {

void write_json_atomic(const std::string& path, const nlohmann::json& j) {
  // Reports pass through redaction too: a secret that slipped into a message never reaches disk.
  write_file_atomic(path, redact(j.dump(2)) + "\n");
}

}  // namespace bkd

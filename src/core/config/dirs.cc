#include "core/config/dirs.h"

#include "core/config/settings.h"
#include "core/util/fs.h"

namespace bkd {

std::vector<std::string> pipeline_dirs(const Settings& s) {
  std::vector<std::string> d;
  for (const char* key : {"DRIVE_ROOT", "DATA_DIR", "REPORTS_DIR", "CKPT_DIR", "CACHE_DIR", "LOG_DIR"})
    d.push_back(s.str(key));
  return d;
}

std::vector<std::string> ensure_dirs(const Settings& s) {
  std::vector<std::string> created;
  for (const auto& dir : pipeline_dirs(s)) {
    if (dir_exists(dir)) continue;
    if (file_exists(dir))
      throw Error("'" + dir + "' exists but is a file, not a directory",
                  "move the file away or point the setting at another path");
    ensure_dir(dir);
    created.push_back(dir);
  }
  return created;
}

}  // namespace bkd

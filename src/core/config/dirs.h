#pragma once
#include <string>
#include <vector>

namespace bkd {
class Settings;

// The directory tree the pipeline writes into (DRIVE_ROOT, DATA_DIR, ...), in creation order.
std::vector<std::string> pipeline_dirs(const Settings& s);
// Creates every pipeline directory; returns the ones it created (existing ones are fine).
std::vector<std::string> ensure_dirs(const Settings& s);

}  // namespace bkd

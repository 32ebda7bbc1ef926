#pragma once
// File helpers. Every write that produces a result file goes through write_file_atomic
// (temp file in the same folder + fsync + rename) so a crash never leaves half a file.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bkd {

std::string read_file(const std::string& path);  // throws Error naming the path
bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
uint64_t file_size(const std::string& path);
void ensure_dir(const std::string& path);  // mkdir -p; throws on failure
void write_file_atomic(const std::string& path, std::string_view bytes);
// Removes the temp files write_file_atomic left under `dir` (and its sub-folders) when the process
// that wrote them died before the rename (kill -9): "<name>.tmp.<pid>.<n>.<host>" whose pid no longer
// runs on this host. On a folder shared between machines, another host's temp file is removed only
// when it is a day old (its pid cannot be checked from here). Returns how many it removed.
int remove_orphan_temp_files(const std::string& dir);
// 8 hex digits naming this machine (a hash of its host name), part of every temp file's name.
std::string host_tag();
std::string join_path(const std::string& a, const std::string& b);
std::string parent_dir(const std::string& path);
std::vector<std::string> list_dir(const std::string& dir);  // sorted names, no . or ..

// Read-only memory map of a whole file; unmapped on destruction.
class MappedFile {
 public:
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace bkd

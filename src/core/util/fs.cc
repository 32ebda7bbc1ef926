#include "core/util/fs.h"

#include <cstdio>
#include <csignal>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "core/util/error.h"

namespace bkd {
namespace stdfs = std::filesystem;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error("read error on '" + path + "'");
  return ss.str();
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool dir_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

uint64_t file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw Error("cannot stat '" + path + "': " + std::strerror(errno));
  return static_cast<uint64_t>(st.st_size);
}

void ensure_dir(const std::string& path) {
  if (path.empty()) throw Error("empty directory path");
  std::error_code ec;
  stdfs::create_directories(path, ec);
  if (ec || !dir_exists(path))
    throw Error("cannot create directory '" + path + "': " + (ec ? ec.message() : "not a directory"),
                "check the path setting and the permissions of its parent");
}

std::string host_tag() {
  // 8 hex digits of FNV-1a over the host name: which machine wrote a temp file on a shared folder.
  static const std::string tag = [] {
    char name[256] = {0};
    ::gethostname(name, sizeof name - 1);
    uint32_t h = 2166136261u;
    for (const char* c = name; *c; ++c) h = (h ^ uint8_t(*c)) * 16777619u;
    char hex[9];
    std::snprintf(hex, sizeof hex, "%08x", h);
    return std::string(hex);
  }();
  return tag;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const std::string dir = parent_dir(path);
  if (!dir.empty()) ensure_dir(dir);
  std::random_device rd;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd()) + "." + host_tag();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot create '" + tmp + "': " + std::strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("write to '" + tmp + "' failed: " + std::strerror(e));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw Error("cannot flush '" + tmp + "': " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    throw Error("cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(e));
  }
}

int remove_orphan_temp_files(const std::string& dir) {
  namespace stdfs = std::filesystem;
  std::error_code ec;
  if (!stdfs::is_directory(dir, ec)) return 0;
  int removed = 0;
  for (auto it = stdfs::recursive_directory_iterator(dir, ec); !ec && it != stdfs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    const std::string name = it->path().filename().string();
    const size_t at = name.rfind(".tmp.");
    if (at == std::string::npos) continue;
    long pid = 0;
    unsigned long long n = 0;
    char host[9] = {0}, rest = 0;
    const int fields = std::sscanf(name.c_str() + at, ".tmp.%ld.%llu.%8[0-9a-f]%c", &pid, &n, host, &rest);
    const bool old_style = std::sscanf(name.c_str() + at, ".tmp.%ld.%llu%c", &pid, &n, &rest) == 2;
    if ((fields != 3 && !old_style) || pid <= 0) continue;
    if (fields == 3 && host_tag() != host) {
      // Another machine's writer on a shared folder: its pid means nothing here. Only a day-old temp
      // file is surely abandoned (a live write takes milliseconds).
      const auto age = stdfs::file_time_type::clock::now() - stdfs::last_write_time(it->path(), ec);
      if (ec || age < std::chrono::hours(24)) continue;
    } else if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) {
      continue;  // its writer may still run
    }
    if (stdfs::remove(it->path(), ec)) ++removed;
  }
  return removed;
}

std::string join_path(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  if (b.front() == '/') return b;
  return a.back() == '/' ? a + b : a + "/" + b;
}

std::string parent_dir(const std::string& path) {
  auto pos = path.find_last_of('/');
  if (pos == std::string::npos) return "";
  if (pos == 0) return "/";
  return path.substr(0, pos);
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (auto it = stdfs::directory_iterator(dir, ec); !ec && it != stdfs::directory_iterator(); it.increment(ec))
    names.push_back(it->path().filename().string());
  if (ec) throw Error("cannot list directory '" + dir + "': " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

MappedFile::MappedFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw Error("cannot stat '" + path + "'");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ > 0) {
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw Error("cannot map '" + path + "': " + std::strerror(errno));
    }
    data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);
}

MappedFile::~MappedFile() {
  if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace bkd

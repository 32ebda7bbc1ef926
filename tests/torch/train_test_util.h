#pragma once
// Shared by the training tests: fresh temp folders and small learnable token documents.
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace bkd::test {

// A fresh, empty folder under the system temp dir, named after the test's prefix and the pid.
inline std::string fresh_dir(const std::string& prefix, const std::string& name) {
  namespace fs = std::filesystem;
  fs::path p = fs::temp_directory_path() / (prefix + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// Learnable structure: mostly "next = (cur * mul + add) mod (vocab - 1)", one token in five random.
inline std::vector<std::vector<int32_t>> patterned_docs(int64_t vocab, int n_docs, int len, uint64_t seed, int mul = 3,
                                                       int add = 1) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<int32_t>> docs(static_cast<size_t>(n_docs));
  for (auto& d : docs) {
    int32_t cur = int32_t(rng() % uint64_t(vocab - 1));
    for (int i = 0; i < len; ++i) {
      d.push_back(cur);
      cur = rng() % 5 == 0 ? int32_t(rng() % uint64_t(vocab - 1)) : int32_t((cur * mul + add) % (vocab - 1));
    }
  }
  return docs;
}

}  // namespace bkd::test

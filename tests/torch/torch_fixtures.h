#pragma once
// Golden fixtures for the torch tests: tests/tools/make_torch_fixtures.py (PyTorch eager, independent
// of the C++ code) writes them once per test process into a temporary folder, removed at exit.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <string>

namespace bkd::test {

// The Python with PyTorch that writes the fixtures: Debian's python3-torch, or BKD_TEST_PYTHON (e.g. the
// Python whose LibTorch a CUDA build links, so the fixtures come from the same PyTorch version).
inline std::string fixture_python() {
  const char* p = std::getenv("BKD_TEST_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

inline bool python_torch_available() {
  return std::system((fixture_python() + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
}

// Directory holding the fixtures, or "" when that Python with torch is missing.
inline std::string fixture_dir() {
  struct Dir {
    std::string path;
    ~Dir() {
      std::error_code ec;
      if (!path.empty()) std::filesystem::remove_all(path, ec);
    }
  };
  static std::once_flag once;
  static Dir dir;
  std::call_once(once, [] {
    if (!python_torch_available()) return;
    std::string d = (std::filesystem::temp_directory_path() / ("bkd_torch_fixtures_" + std::to_string(::getpid()))).string();
    std::string cmd = fixture_python() + " " BKD_TEST_TOOLS_DIR "/make_torch_fixtures.py '" + d + "'";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("fixture script failed: " + cmd);
    dir.path = d;
  });
  return dir.path;
}

inline std::map<std::string, torch::Tensor> load_fixture(const std::string& name) {
  std::string path = fixture_dir() + "/" + name + ".pt";
  std::ifstream f(path, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (bytes.empty()) throw std::runtime_error("missing fixture " + path);
  auto dict = torch::pickle_load(bytes).toGenericDict();
  std::map<std::string, torch::Tensor> out;
  for (const auto& kv : dict) out[kv.key().toStringRef()] = kv.value().toTensor();
  return out;
}

#define BKD_NEED_FIXTURES()                                                               \
  do {                                                                                    \
    if (::bkd::test::fixture_dir().empty())                                               \
      GTEST_SKIP() << ::bkd::test::fixture_python() << " with torch is not installed (Debian python3-torch, or set BKD_TEST_PYTHON)"; \
  } while (0)

// Max |a - b| relative to max |b| (+ a floor so all-zero references compare absolutely).
inline double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  auto bd = b.to(torch::kDouble);
  return (a.to(torch::kDouble) - bd).abs().max().item<double>() / (bd.abs().max().item<double>() + 1e-12);
}

}  // namespace bkd::test

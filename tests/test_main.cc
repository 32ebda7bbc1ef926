// Test entry point: a crash report for fatal signals, and a private temporary folder per test
// process (TMPDIR and TEST_TMPDIR point into it) that is removed at exit, so no test leaves files behind.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>

#include "core/util/crash_report.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  bkd::install_crash_report("bkd tests");
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/bkd_tests_XXXXXX";
  if (!::mkdtemp(tmpl.data())) {
    std::perror("mkdtemp for the test temporary folder");
    return 1;
  }
  ::setenv("TMPDIR", tmpl.c_str(), 1);
  ::setenv("TEST_TMPDIR", (tmpl + "/").c_str(), 1);
  const int rc = RUN_ALL_TESTS();
  std::error_code ec;
  std::filesystem::remove_all(tmpl, ec);
  return rc;
}

// The fatal-signal report: each case runs in a forked child (the report ends the process), and the
// parent checks what the child wrote to stderr and which signal ended it.
#include "core/util/crash_report.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

#include "core/util/log.h"

namespace bkd {
namespace {

#if defined(__SANITIZE_ADDRESS__)
#define SKIP_UNDER_ASAN() GTEST_SKIP() << "AddressSanitizer owns the fatal signals in this build"
#else
#define SKIP_UNDER_ASAN() (void)0
#endif

struct ChildOutcome {
  std::string stderr_text;
  int signal = 0;  // the signal that ended the child, 0 if it exited
};

// Everything until the write end closes.
std::string read_all(int fd) {
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) text.append(buf, size_t(n));
  ::close(fd);
  return text;
}

ChildOutcome run_in_child(const std::function<void()>& body) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDERR_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::signal(SIGABRT, SIG_DFL);
    body();
    ::_exit(0);
  }
  ::close(fds[1]);
  ChildOutcome out;
  out.stderr_text = read_all(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFSIGNALED(status)) out.signal = WTERMSIG(status);
  return out;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

int recurse_forever(int depth) {
  volatile char pad[512];
  pad[0] = char(depth);
  return recurse_forever(depth + 1) + pad[0];  // not a tail call: every level keeps its frame
}

TEST(CrashReport, ReportNamesTheSignalAddressContextAndFrames) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  set_crash_context("train student step %d/%d: %s", 7, 40, "backward");
  write_crash_report(fds[1], SIGSEGV, reinterpret_cast<const void*>(uintptr_t(0x10)));
  ::close(fds[1]);
  const std::string text = read_all(fds[0]);
  EXPECT_TRUE(contains(text, "fatal signal SIGSEGV")) << text;
  EXPECT_TRUE(contains(text, "at address 0x0000000000000010")) << text;
  EXPECT_TRUE(contains(text, "while: train student step 7/40: backward")) << text;
  EXPECT_TRUE(contains(text, "[0x")) << "no backtrace frames:\n" << text;
  clear_crash_context();
}

TEST(CrashReport, ContextIsReplacedClearedAndTruncated) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  set_crash_context("first");
  set_crash_context("second %s", std::string(500, 'x').c_str());
  write_crash_report(fds[1], SIGBUS, nullptr);
  clear_crash_context();
  write_crash_report(fds[1], SIGBUS, nullptr);
  ::close(fds[1]);
  const std::string text = read_all(fds[0]);
  EXPECT_FALSE(contains(text, "first"));
  EXPECT_TRUE(contains(text, "while: second xxx"));
  EXPECT_FALSE(contains(text, std::string(300, 'x'))) << "the context must be truncated to its buffer";
  EXPECT_TRUE(contains(text, "while: (no context set)"));
  EXPECT_FALSE(contains(text, " at address ")) << "no address was given";
}

TEST(CrashReport, InvalidMemoryAccessIsReportedAndTheProcessStillDiesOfIt) {
  SKIP_UNDER_ASAN();
  ChildOutcome c = run_in_child([] {
    install_crash_report("bkd-test");
    set_crash_context("collect shard %d", 3);
    volatile uintptr_t addr = 0x20;  // opaque to the optimizer: a real load from an unmapped page
    std::printf("%d", *reinterpret_cast<volatile int*>(uintptr_t(addr)));
  });
  EXPECT_EQ(c.signal, SIGSEGV) << c.stderr_text;
  EXPECT_TRUE(contains(c.stderr_text, "bkd-test: fatal signal SIGSEGV")) << c.stderr_text;
  EXPECT_TRUE(contains(c.stderr_text, "at address 0x0000000000000020")) << c.stderr_text;
  EXPECT_TRUE(contains(c.stderr_text, "bkd-test: while: collect shard 3")) << c.stderr_text;
  EXPECT_TRUE(contains(c.stderr_text, "[0x")) << c.stderr_text;

  // scripts/symbolize_crash.sh turns the frames into names (this process's cwd is the child's).
  const char* tmp = std::getenv("TMPDIR");
  std::string path = std::string(tmp ? tmp : "/tmp") + "/crash_XXXXXX";
  const int fd = ::mkstemp(path.data());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::write(fd, c.stderr_text.data(), c.stderr_text.size()), ssize_t(c.stderr_text.size()));
  ::close(fd);
  FILE* p = ::popen(("bash '" + std::string(BKD_SOURCE_DIR) + "/scripts/symbolize_crash.sh' < '" + path + "'").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string named;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) named.append(buf, n);
  ::pclose(p);
  ::unlink(path.c_str());
  EXPECT_TRUE(contains(named, "bkd::write_crash_report")) << named;
}

TEST(CrashReport, StackOverflowIsReportedFromTheAlternateStack) {
  SKIP_UNDER_ASAN();
  ChildOutcome c = run_in_child([] {
    install_crash_report("bkd-test");
    set_crash_context("deep recursion");
    std::printf("%d", recurse_forever(0));
  });
  EXPECT_EQ(c.signal, SIGSEGV) << c.stderr_text;
  EXPECT_TRUE(contains(c.stderr_text, "fatal signal SIGSEGV")) << c.stderr_text;
  EXPECT_TRUE(contains(c.stderr_text, "while: deep recursion")) << c.stderr_text;
}

TEST(CrashReport, UncaughtExceptionInAThreadIsNamedRedactedAndAborts) {
  SKIP_UNDER_ASAN();
  const std::string key = "sk-" "test-CRASHKEY-0123456789abcdef";
  ChildOutcome c = run_in_child([&] {
    install_crash_report("bkd-test");
    register_secret(key);
    std::thread t([&] { throw std::runtime_error("provider refused key " + key); });
    t.join();
  });
  EXPECT_EQ(c.signal, SIGABRT) << c.stderr_text;
  EXPECT_TRUE(contains(c.stderr_text, "bkd-test: uncaught exception: provider refused key [REDACTED]")) << c.stderr_text;
  EXPECT_FALSE(contains(c.stderr_text, "CRASHKEY")) << "a secret reached the crash report";
  EXPECT_TRUE(contains(c.stderr_text, "fatal signal SIGABRT")) << c.stderr_text;
}

TEST(CrashReport, WithoutTheHandlerTheChildDiesSilently) {
  // The control for the cases above: the report comes from install_crash_report, not from elsewhere.
  ChildOutcome c = run_in_child([] {
    ::signal(SIGSEGV, SIG_DFL);
    ::raise(SIGSEGV);
  });
  EXPECT_EQ(c.signal, SIGSEGV);
  EXPECT_FALSE(contains(c.stderr_text, "fatal signal"));
}

}  // namespace
}  // namespace bkd

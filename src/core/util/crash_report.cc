#include "core/util/crash_report.h"

#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "core/util/log.h"

namespace bkd {
namespace {

// Two buffers: the writer fills the idle one, then flips `active`, so the handler never reads a
// half-written line from the thread that sets it.
constexpr size_t kContextBytes = 208;
char g_context[2][kContextBytes];
std::atomic<int> g_active{0};
const char* g_program = "bitnet-kde";
alignas(16) char g_alt_stack[1 << 16];  // the handler must run even when the fault is a stack overflow

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

// Async-signal-safe output: write(2) and hand-made number formatting only.
void put(int fd, const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(fd, s, n);
    if (w <= 0) return;
    s += w, n -= size_t(w);
  }
}

void put_hex(int fd, uintptr_t v) {
  char buf[2 + 16 + 1] = "0x";
  for (int i = 0; i < 16; ++i) buf[2 + i] = "0123456789abcdef"[(v >> (60 - 4 * i)) & 0xf];
  buf[18] = '\0';
  put(fd, buf);
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV (invalid memory access)";
    case SIGBUS: return "SIGBUS (bad memory access)";
    case SIGFPE: return "SIGFPE (arithmetic fault)";
    case SIGILL: return "SIGILL (illegal instruction: a kernel built for a CPU feature this machine lacks?)";
    case SIGABRT: return "SIGABRT (abort)";
    default: return "unknown signal";
  }
}

void on_fatal_signal(int sig, siginfo_t* info, void*) {
  write_crash_report(STDERR_FILENO, sig, sig == SIGABRT ? nullptr : info->si_addr);
  // SA_RESETHAND restored the default action: re-raise so the process dies of this signal. A fault
  // re-executes the faulting instruction on return; raise() covers signals sent by kill/abort.
  ::raise(sig);
}

void on_terminate() {
  // An exception nobody caught (in a worker thread, say): name it before abort() reports the rest.
  if (auto e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      std::fprintf(stderr, "%s: uncaught exception: %s\n", g_program, redact(ex.what()).c_str());
    } catch (...) {
      std::fprintf(stderr, "%s: uncaught exception of a non-standard type\n", g_program);
    }
  }
  std::abort();
}

}  // namespace

void write_crash_report(int fd, int sig, const void* fault_address) {
  put(fd, "\n");
  put(fd, g_program);
  put(fd, ": fatal signal ");
  put(fd, signal_name(sig));
  if (fault_address) {
    put(fd, " at address ");
    put_hex(fd, uintptr_t(fault_address));
  }
  put(fd, "\n");
  const char* ctx = g_context[g_active.load(std::memory_order_acquire)];
  put(fd, g_program);
  put(fd, ": while: ");
  put(fd, ctx[0] ? ctx : "(no context set)");
  put(fd, "\n");
  put(fd, g_program);
  put(fd, ": backtrace (scripts/symbolize_crash.sh names the frames; or addr2line -Cfpe MODULE +0xOFFSET):\n");
  void* frames[64];
  const int n = ::backtrace(frames, 64);
  ::backtrace_symbols_fd(frames, n, fd);
  put(fd, g_program);
  put(fd, ": this is a bug; please report it with the lines above\n");
}

void install_crash_report(const char* program) {
#if defined(__SANITIZE_ADDRESS__)
  (void)program;
  return;
#else
  if (program && *program) g_program = program;
  void* warm[2];
  ::backtrace(warm, 2);  // loads libgcc's unwinder now: the first call may allocate, which a handler must not

  stack_t ss{};
  ss.ss_sp = g_alt_stack;
  ss.ss_size = sizeof g_alt_stack;
  ::sigaltstack(&ss, nullptr);

  struct sigaction sa {};
  sa.sa_sigaction = on_fatal_signal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (int sig : kSignals) ::sigaction(sig, &sa, nullptr);
  std::set_terminate(on_terminate);
#endif
}

void set_crash_context(const char* fmt, ...) {
  const int next = 1 - g_active.load(std::memory_order_relaxed);
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(g_context[next], kContextBytes, fmt, ap);
  va_end(ap);
  g_active.store(next, std::memory_order_release);
}

void clear_crash_context() {
  const int next = 1 - g_active.load(std::memory_order_relaxed);
  g_context[next][0] = '\0';
  g_active.store(next, std::memory_order_release);
}

}  // namespace bkd

#pragma once
// A report for fatal signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT): which signal, the faulting
// address, what the program was doing (the crash context, a short line long-running loops keep
// current), and a raw backtrace with module offsets for addr2line. Then the signal's default action
// runs, so the exit status still names the signal and a core dump is still written where enabled.
// Only stderr sees it; contexts name stages and steps, never settings values.

namespace bkd {

// Installs the handlers for the process (a later call renames the program and installs them again,
// which also re-arms them after a report). `program` heads the report. The alternate stack serves
// the calling thread. A no-op under AddressSanitizer, whose own report is better.
void install_crash_report(const char* program);

// Sets the crash context (printf-style, truncated to 200 bytes). Cheap enough to call per step.
void set_crash_context(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void clear_crash_context();

// Writes the report for `sig` to `fd` (what the handler does, without dying); for tests.
void write_crash_report(int fd, int sig, const void* fault_address);

}  // namespace bkd

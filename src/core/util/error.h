#pragma once
// One error type for the whole project: what went wrong, where, and how to fix it.
#include <stdexcept>
#include <string>

namespace bkd {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, std::string hint = {})
      : std::runtime_error(what), hint_(std::move(hint)) {}
  const std::string& hint() const { return hint_; }

 private:
  std::string hint_;
};

// Usage errors (bad flags, bad settings) exit with 2; everything else with 1.
class UsageError : public Error {
 public:
  using Error::Error;
};

}  // namespace bkd

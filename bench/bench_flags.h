#pragma once
// Command lines of the side-by-side benchmarks: "--name value" pairs and bare switches.
//   for_each_flag(argc, argv, "decode_bench", [&](const std::string& name, const FlagValue& value) {
//     if (name == "--ckpt") a.ckpt = value(); else return false;  // false: unknown flag
//     return true;
//   });
#include <functional>
#include <stdexcept>
#include <string>

namespace bkd {

using FlagValue = std::function<std::string()>;  // takes the next argument; throws when there is none

inline void for_each_flag(int argc, char** argv, const std::string& program,
                          const std::function<bool(const std::string&, const FlagValue&)>& handle) {
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    const FlagValue value = [&] {
      if (i + 1 >= argc) throw std::runtime_error("missing value for " + name);
      return std::string(argv[++i]);
    };
    if (!handle(name, value))
      throw std::runtime_error("unknown argument " + name + " (see the usage line at the top of " + program + ".cc)");
  }
}

}  // namespace bkd

#pragma once
// Capabilities probed from a provider, kept on disk with their date: support for logprobs changes
// by model and by day, so a probe is trusted for the UTC day it was made and redone after.
#include <optional>
#include <string>

#include "core/teacher/provider.h"

namespace bkd {

class CapabilityStore {
 public:
  explicit CapabilityStore(std::string dir) : dir_(std::move(dir)) {}  // empty: nothing stored
  std::optional<Capabilities> load(const std::string& provider, const std::string& base_url,
                                   const std::string& model) const;
  void save(const std::string& provider, const std::string& base_url, const std::string& model,
            const Capabilities& caps) const;
  std::string path(const std::string& provider, const std::string& base_url, const std::string& model) const;

 private:
  std::string dir_;
};

}  // namespace bkd

#pragma once
// Content hashes: SHA-256 for identities that must not collide (tokenizers, caches, settings),
// FNV-1a for cheap in-memory keys.
#include <cstdint>
#include <string>
#include <string_view>

namespace bkd {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t n);
  void update(std::string_view s) { update(s.data(), s.size()); }
  std::string hex_digest();  // finalizes; call once

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view data);
uint64_t fnv1a64(std::string_view data, uint64_t seed = 1469598103934665603ull);

}  // namespace bkd

#pragma once
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord framing uses it, and the
// "masked" form TFRecord stores (rotate right by 15, add 0xa282ead8).
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bkd {

uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);  // crc: a previous result to extend
inline uint32_t crc32c(std::string_view s) { return crc32c(s.data(), s.size()); }
uint32_t crc32c_mask(uint32_t crc);

}  // namespace bkd

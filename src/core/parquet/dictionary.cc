#include "core/parquet/dictionary.h"

#include <cstring>

namespace bkd::parquet {

bool build_dictionary(const uint8_t* values, size_t n, int width, size_t max_distinct, std::vector<uint8_t>& dict,
                      std::vector<uint32_t>& indices) {
  dict.clear();
  indices.resize(n);
  size_t cap = 64;
  while (cap < 2 * (max_distinct + 1)) cap <<= 1;
  int shift = 64;
  for (size_t c = cap; c > 1; c >>= 1) --shift;
  std::vector<uint64_t> keys(cap);
  std::vector<uint32_t> slots(cap, UINT32_MAX);
  uint32_t distinct = 0;
  for (size_t i = 0; i < n; ++i) {
    uint64_t key = 0;
    std::memcpy(&key, values + i * width, width);
    size_t h = static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift);
    for (;;) {
      if (slots[h] == UINT32_MAX) {
        if (distinct >= max_distinct) return false;
        slots[h] = distinct++;
        keys[h] = key;
        dict.insert(dict.end(), values + i * width, values + (i + 1) * width);
        break;
      }
      if (keys[h] == key) break;
      h = (h + 1) & (cap - 1);
    }
    indices[i] = slots[h];
  }
  return true;
}

}  // namespace bkd::parquet

#include "core/parquet/dictionary.h"

#include <algorithm>
#include <cstring>

namespace bkd::parquet {

namespace {

// Open addressing on the value's bit pattern; the table grows so small dictionaries stay in cache.
class DictTable {
 public:
  DictTable() { resize(1024); }
  // Returns the index of `key`, inserting it as `next` when new (then *inserted is true).
  uint32_t find_or_insert(uint64_t key, uint32_t next, bool* inserted) {
    size_t h = slot_of(key);
    for (;;) {
      if (slots_[h] == UINT32_MAX) {
        slots_[h] = next, keys_[h] = key, *inserted = true;
        if (++used_ * 2 > slots_.size()) grow();
        return next;
      }
      if (keys_[h] == key) return *inserted = false, slots_[h];
      h = (h + 1) & mask_;
    }
  }

 private:
  size_t slot_of(uint64_t key) const { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_); }
  void resize(size_t cap) {
    keys_.assign(cap, 0), slots_.assign(cap, UINT32_MAX);
    mask_ = cap - 1, shift_ = 64;
    for (size_t c = cap; c > 1; c >>= 1) --shift_;
  }
  void grow() {
    std::vector<uint64_t> keys = std::move(keys_);
    std::vector<uint32_t> slots = std::move(slots_);
    resize(slots.size() * 2);
    for (size_t i = 0; i < slots.size(); ++i) {
      if (slots[i] == UINT32_MAX) continue;
      size_t h = slot_of(keys[i]);
      while (slots_[h] != UINT32_MAX) h = (h + 1) & mask_;
      slots_[h] = slots[i], keys_[h] = keys[i];
    }
  }
  std::vector<uint64_t> keys_;
  std::vector<uint32_t> slots_;
  size_t mask_ = 0, used_ = 0;
  int shift_ = 64;
};

}  // namespace

namespace {

// Fast path for integer columns whose values span a small range (token ids, positions): a direct index.
template <class T>
bool build_dense(const uint8_t* values, size_t n, size_t max_distinct, std::vector<uint8_t>& dict,
                 std::vector<uint32_t>& indices, bool* handled) {
  *handled = false;
  if (n == 0) return false;
  T lo, hi;
  std::memcpy(&lo, values, sizeof(T));
  hi = lo;
  for (size_t i = 1; i < n; ++i) {
    T v;
    std::memcpy(&v, values + i * sizeof(T), sizeof(T));
    lo = v < lo ? v : lo, hi = v > hi ? v : hi;
  }
  const uint64_t range = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
  if (range >= std::max<uint64_t>(1u << 16, n)) return false;  // too sparse for a direct table
  *handled = true;
  std::vector<uint32_t> slot(range + 1, UINT32_MAX);
  uint32_t distinct = 0;
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, values + i * sizeof(T), sizeof(T));
    uint32_t& s = slot[static_cast<uint64_t>(v) - static_cast<uint64_t>(lo)];
    if (s == UINT32_MAX) {
      if (distinct >= max_distinct) return false;
      s = distinct++;
      dict.insert(dict.end(), values + i * sizeof(T), values + (i + 1) * sizeof(T));
    }
    indices[i] = s;
  }
  return true;
}

}  // namespace

bool build_dictionary(const uint8_t* values, size_t n, int width, size_t max_distinct, std::vector<uint8_t>& dict,
                      std::vector<uint32_t>& indices, bool integers) {
  dict.clear();
  indices.resize(n);
  if (integers) {
    bool handled = false;
    bool ok = width == 4 ? build_dense<int32_t>(values, n, max_distinct, dict, indices, &handled)
                         : build_dense<int64_t>(values, n, max_distinct, dict, indices, &handled);
    if (handled) return ok;
    dict.clear();
  }
  DictTable table;
  uint32_t distinct = 0;
  // Give up early on columns whose first values are mostly distinct (log-probs, random floats).
  const size_t probe = std::min<size_t>(n, 4096);
  for (size_t i = 0; i < n; ++i) {
    uint64_t key = 0;
    std::memcpy(&key, values + i * width, width);
    bool inserted = false;
    indices[i] = table.find_or_insert(key, distinct, &inserted);
    if (inserted) {
      if (++distinct > max_distinct) return false;
      dict.insert(dict.end(), values + i * width, values + (i + 1) * width);
    }
    // Extrapolated from the first values, the distinct count would blow far past the limit.
    if (i + 1 == probe && static_cast<double>(distinct) * n / probe > 2.0 * max_distinct) return false;
  }
  return true;
}

}  // namespace bkd::parquet

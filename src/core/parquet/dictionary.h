#pragma once
// Dictionary building for fixed-width values: distinct values keyed by their bit pattern (so NaN payloads
// and -0.0 survive exactly), with an early give-up when the column is too diverse for a dictionary to pay.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace bkd::parquet {

// On success fills `dict` (distinct values in first-seen order, raw bytes) and `indices` (one per value)
// and returns true. Returns false once more than `max_distinct` values are distinct. `integers` (INT32 or
// INT64 values) allows a direct-index fast path when the values span a small range.
bool build_dictionary(const uint8_t* values, size_t n, int width, size_t max_distinct, std::vector<uint8_t>& dict,
                      std::vector<uint32_t>& indices, bool integers = false);

}  // namespace bkd::parquet

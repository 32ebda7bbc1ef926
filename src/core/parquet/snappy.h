#pragma once
// Snappy raw block format (google/snappy format_description.txt), which Parquet's SNAPPY codec uses:
// a varint uncompressed length, then literals and back-references. Our own small codec so the core
// library needs no extra dependency; DuckDB writes SNAPPY by default, so reading it matters.
#include <cstddef>
#include <cstdint>
#include <string>

namespace bkd::parquet {

// Appends the compressed form of [in, in+n) to out (greedy hash matching, offsets < 64 KiB).
void snappy_compress(const uint8_t* in, size_t n, std::string& out);
// Decompresses into exactly out_size bytes; malformed data or another size throws naming `where`.
void snappy_decompress(const uint8_t* in, size_t n, uint8_t* out, size_t out_size, const std::string& where);

}  // namespace bkd::parquet

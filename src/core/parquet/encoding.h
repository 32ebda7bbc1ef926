#pragma once
// Parquet value encodings (Encodings.md): the RLE / bit-packed hybrid used for levels and dictionary
// indices, PLAIN, and the decoders for what other writers use (BYTE_STREAM_SPLIT, DELTA_BINARY_PACKED).
// Decoders never read past `size` and throw bkd::Error prefixed with `where` on malformed input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bkd::parquet {

int bit_width_of(uint64_t max_value);  // bits needed for values 0..max_value (0 for 0)

// Appends the hybrid encoding of `values` (each < 2^bit_width) to `out` (no length prefix).
void rle_hybrid_encode(const uint32_t* values, size_t n, int bit_width, std::string& out);
// Same, value by value, with no run detection: only bit-packed groups. The simple reference for tests.
void rle_hybrid_encode_reference(const uint32_t* values, size_t n, int bit_width, std::string& out);

// Decodes exactly `count` values; returns the bytes consumed. Too little data is an error.
size_t rle_hybrid_decode(const uint8_t* data, size_t size, int bit_width, size_t count, uint32_t* out,
                         const std::string& where);

// Bit-packed booleans (PLAIN for BOOLEAN): LSB first.
void plain_encode_bools(const uint8_t* values, size_t n, std::string& out);
size_t plain_decode_bools(const uint8_t* data, size_t size, size_t count, uint8_t* out, const std::string& where);

// BYTE_STREAM_SPLIT: byte k of value i lives at k * count + i. Decodes `count` values of `width` bytes.
void byte_stream_split_encode(const uint8_t* values, size_t count, int width, std::string& out);
void byte_stream_split_decode(const uint8_t* data, size_t size, size_t count, int width, uint8_t* out,
                              const std::string& where);

// DELTA_BINARY_PACKED for INT32 (width 4) or INT64 (width 8); returns the bytes consumed.
size_t delta_binary_packed_decode(const uint8_t* data, size_t size, size_t count, int width, uint8_t* out,
                                  const std::string& where);

}  // namespace bkd::parquet

#pragma once
// Page compression: ZSTD (libzstd), SNAPPY (our own raw-block codec, snappy.h) and UNCOMPRESSED.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/parquet/parquet_format.h"

namespace bkd::parquet {

Codec parse_codec(const std::string& name);  // "zstd" | "snappy" | "none"/"uncompressed"; throws UsageError
bool codec_supported(Codec c);

// Reusable compression state (one per writer / reader; not thread-safe).
class Compressor {
 public:
  Compressor(Codec codec, int zstd_level);
  ~Compressor();
  Compressor(const Compressor&) = delete;
  Compressor& operator=(const Compressor&) = delete;
  // Appends the compressed form of [in, in+n) to out.
  void compress(const uint8_t* in, size_t n, std::string& out);
  Codec codec() const { return codec_; }

 private:
  Codec codec_;
  int level_;
  void* zstd_ = nullptr;
};

class Decompressor {
 public:
  Decompressor();
  ~Decompressor();
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;
  // Decompresses into exactly out_size bytes; any other size, or bad data, throws naming `where`.
  void decompress(Codec codec, const uint8_t* in, size_t n, uint8_t* out, size_t out_size, const std::string& where);

 private:
  void* zstd_ = nullptr;
};

}  // namespace bkd::parquet

#include "core/parquet/compression.h"

#include <zstd.h>

#include <cstring>

#include "core/parquet/snappy.h"
#include "core/util/error.h"

namespace bkd::parquet {

Codec parse_codec(const std::string& name) {
  if (name == "zstd") return Codec::ZSTD;
  if (name == "snappy") return Codec::SNAPPY;
  if (name == "none" || name == "uncompressed") return Codec::UNCOMPRESSED;
  throw UsageError("unknown Parquet compression '" + name + "'", "use zstd, snappy or none");
}

bool codec_supported(Codec c) { return c == Codec::UNCOMPRESSED || c == Codec::ZSTD || c == Codec::SNAPPY; }

Compressor::Compressor(Codec codec, int zstd_level) : codec_(codec), level_(zstd_level) {
  if (!codec_supported(codec))
    throw UsageError(std::string("Parquet compression ") + codec_name(codec) + " is not supported by this build",
                     "use PARQUET_COMPRESSION=zstd, snappy or none");
  if (codec == Codec::ZSTD) zstd_ = ZSTD_createCCtx();
}

Compressor::~Compressor() { ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(zstd_)); }

void Compressor::compress(const uint8_t* in, size_t n, std::string& out) {
  size_t start = out.size();
  switch (codec_) {
    case Codec::UNCOMPRESSED:
      out.append(reinterpret_cast<const char*>(in), n);
      return;
    case Codec::ZSTD: {
      out.resize(start + ZSTD_compressBound(n));
      size_t got = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(zstd_), &out[start], out.size() - start, in, n, level_);
      if (ZSTD_isError(got)) throw Error(std::string("zstd compression failed: ") + ZSTD_getErrorName(got));
      out.resize(start + got);
      return;
    }
    case Codec::SNAPPY: snappy_compress(in, n, out); return;
    default: throw Error("unsupported codec");
  }
}

Decompressor::Decompressor() : zstd_(ZSTD_createDCtx()) {}
Decompressor::~Decompressor() { ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(zstd_)); }

void Decompressor::decompress(Codec codec, const uint8_t* in, size_t n, uint8_t* out, size_t out_size,
                              const std::string& where) {
  auto bad = [&](const std::string& what) {
    throw Error(where + ": " + what, "the file is damaged; re-create it");
  };
  switch (codec) {
    case Codec::UNCOMPRESSED:
      if (n != out_size) bad("uncompressed page has " + std::to_string(n) + " bytes, header says " + std::to_string(out_size));
      if (n) std::memcpy(out, in, n);
      return;
    case Codec::ZSTD: {
      size_t got = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(zstd_), out, out_size, in, n);
      if (ZSTD_isError(got)) bad(std::string("zstd: ") + ZSTD_getErrorName(got));
      if (got != out_size)
        bad("page decompresses to " + std::to_string(got) + " bytes, header says " + std::to_string(out_size));
      return;
    }
    case Codec::SNAPPY: snappy_decompress(in, n, out, out_size, where); return;
    default:
      throw Error(where + ": compression " + codec_name(codec) + " is not supported",
                  "re-write the file with zstd, snappy or no compression");
  }
}

}  // namespace bkd::parquet

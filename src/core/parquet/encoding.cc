#include "core/parquet/encoding.h"

#include <algorithm>
#include <cstring>

#include "core/parquet/thrift_compact.h"
#include "core/util/error.h"

namespace bkd::parquet {

namespace {

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw Error(where + ": " + what, "the file is damaged; re-create it");
}

uint64_t read_uvarint(const uint8_t*& p, const uint8_t* end, const std::string& where) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p >= end) fail(where, "varint runs past the end of the data");
    uint8_t b = *p++;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  fail(where, "varint longer than 10 bytes");
}

// Packs n values of `bw` bits LSB first; writes ceil(n*bw/8) bytes.
void pack_bits(const uint32_t* v, size_t n, int bw, std::string& out) {
  uint64_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    acc |= static_cast<uint64_t>(v[i]) << bits;
    bits += bw;
    while (bits >= 8) {
      out.push_back(static_cast<char>(acc & 0xff));
      acc >>= 8;
      bits -= 8;
    }
  }
  if (bits > 0) out.push_back(static_cast<char>(acc & 0xff));
}

// Unpacks n values of `bw` bits (bw <= 32) LSB first; reads only the first ceil(n*bw/8) bytes, which the
// caller checked are within `avail`. Values are taken with unaligned 8-byte loads while a whole load
// stays inside `avail` bytes, then byte by byte.
void unpack_bits(const uint8_t* p, size_t avail, int bw, size_t n, uint32_t* out) {
  if (bw == 0) {
    std::fill(out, out + n, 0u);
    return;
  }
  const uint64_t mask = (1ull << bw) - 1;
  size_t i = 0;
  if (avail >= 8) {
    // Value i starts at byte (i * bw) / 8; an 8-byte load from there holds it whole (bit shift <= 7,
    // bw <= 32) as long as that byte is at most avail - 8.
    const size_t safe = std::min(n, ((avail - 8) * 8) / static_cast<size_t>(bw) + 1);
    if (bw == 1) {
      for (; i < safe; ++i) out[i] = (p[i >> 3] >> (i & 7)) & 1u;
    } else {
      for (; i < safe; ++i) {
        const size_t bit = i * static_cast<size_t>(bw);
        uint64_t w;
        std::memcpy(&w, p + (bit >> 3), 8);
        out[i] = static_cast<uint32_t>((w >> (bit & 7)) & mask);
      }
    }
  }
  for (; i < n; ++i) {
    const size_t bit = i * static_cast<size_t>(bw), byte = bit >> 3;
    const int shift = static_cast<int>(bit & 7);
    uint64_t w = 0;
    for (int b = 0; b * 8 < shift + bw; ++b) w |= static_cast<uint64_t>(p[byte + b]) << (8 * b);
    out[i] = static_cast<uint32_t>((w >> shift) & mask);
  }
}

void put_rle_run(uint32_t value, size_t count, int bw, std::string& out) {
  put_uvarint(out, static_cast<uint64_t>(count) << 1);
  for (int b = 0; b < (bw + 7) / 8; ++b) out.push_back(static_cast<char>((value >> (8 * b)) & 0xff));
}

void put_literals(const uint32_t* v, size_t n, int bw, std::string& out) {
  if (n == 0) return;
  size_t groups = (n + 7) / 8;
  put_uvarint(out, (static_cast<uint64_t>(groups) << 1) | 1);
  pack_bits(v, n, bw, out);
  // Pad the last group to 8 values with zero bits.
  size_t written_bits = n * bw, group_bits = groups * 8 * bw;
  for (size_t b = (written_bits + 7) / 8; b < group_bits / 8; ++b) out.push_back(0);
}

}  // namespace

int bit_width_of(uint64_t max_value) {
  int w = 0;
  while (max_value) ++w, max_value >>= 1;
  return w;
}

void rle_hybrid_encode(const uint32_t* v, size_t n, int bw, std::string& out) {
  size_t lit_start = 0, i = 0;
  while (i < n) {
    size_t j = i + 1;
    while (j < n && v[j] == v[i]) ++j;
    size_t run = j - i;
    if (run >= 8) {
      // Literals must be whole groups of 8: lend the run's first values to the pending literals.
      size_t pending = i - lit_start;
      size_t lend = (8 - pending % 8) % 8;
      if (run - lend >= 8) {
        put_literals(v + lit_start, pending + lend, bw, out);
        put_rle_run(v[i], run - lend, bw, out);
        lit_start = j;
      }
    }
    i = j;
  }
  put_literals(v + lit_start, n - lit_start, bw, out);
}

void rle_hybrid_encode_reference(const uint32_t* v, size_t n, int bw, std::string& out) {
  put_literals(v, n, bw, out);
}

size_t rle_hybrid_decode(const uint8_t* data, size_t size, int bw, size_t count, uint32_t* out,
                         const std::string& where) {
  if (bw < 0 || bw > 32) fail(where, "bit width " + std::to_string(bw) + " is out of range");
  const uint8_t* p = data;
  const uint8_t* end = data + size;
  size_t pos = 0;
  while (pos < count) {
    uint64_t header = read_uvarint(p, end, where);
    if (header & 1) {
      uint64_t groups = header >> 1;
      if (groups > (1ull << 40)) fail(where, "bit-packed run header is too large");
      uint64_t values = groups * 8;
      size_t take = static_cast<size_t>(std::min<uint64_t>(values, count - pos));
      size_t need = (take * bw + 7) / 8;
      size_t avail = static_cast<size_t>(end - p);
      if (need > avail) fail(where, "bit-packed run runs past the end of the data");
      unpack_bits(p, avail, bw, take, out + pos);
      pos += take;
      size_t full = static_cast<size_t>(groups * bw);  // a short final group may be cut off by some writers
      p += std::min(full, avail);
    } else {
      uint64_t run = header >> 1;
      int nbytes = (bw + 7) / 8;
      if (end - p < nbytes) fail(where, "RLE run value runs past the end of the data");
      uint32_t value = 0;
      for (int b = 0; b < nbytes; ++b) value |= static_cast<uint32_t>(p[b]) << (8 * b);
      p += nbytes;
      size_t take = static_cast<size_t>(std::min<uint64_t>(run, count - pos));
      std::fill(out + pos, out + pos + take, value);
      pos += take;
    }
  }
  return static_cast<size_t>(p - data);
}

void plain_encode_bools(const uint8_t* values, size_t n, std::string& out) {
  size_t start = out.size();
  out.resize(start + (n + 7) / 8, 0);
  for (size_t i = 0; i < n; ++i)
    if (values[i]) out[start + i / 8] = static_cast<char>(out[start + i / 8] | (1 << (i % 8)));
}

size_t plain_decode_bools(const uint8_t* data, size_t size, size_t count, uint8_t* out, const std::string& where) {
  size_t need = (count + 7) / 8;
  if (need > size) fail(where, "boolean values run past the end of the page");
  for (size_t i = 0; i < count; ++i) out[i] = (data[i / 8] >> (i % 8)) & 1;
  return need;
}

void byte_stream_split_encode(const uint8_t* values, size_t count, int width, std::string& out) {
  size_t start = out.size();
  out.resize(start + count * width);
  char* o = &out[start];
  for (int k = 0; k < width; ++k)
    for (size_t i = 0; i < count; ++i) o[k * count + i] = static_cast<char>(values[i * width + k]);
}

void byte_stream_split_decode(const uint8_t* data, size_t size, size_t count, int width, uint8_t* out,
                              const std::string& where) {
  if (count * width != size)
    fail(where, "BYTE_STREAM_SPLIT data has " + std::to_string(size) + " bytes for " + std::to_string(count) +
                    " values of " + std::to_string(width) + " bytes");
  for (int k = 0; k < width; ++k)
    for (size_t i = 0; i < count; ++i) out[i * width + k] = data[k * count + i];
}

size_t delta_binary_packed_decode(const uint8_t* data, size_t size, size_t count, int width, uint8_t* out,
                                  const std::string& where) {
  const uint8_t* p = data;
  const uint8_t* end = data + size;
  uint64_t block_size = read_uvarint(p, end, where);
  uint64_t miniblocks = read_uvarint(p, end, where);
  uint64_t total = read_uvarint(p, end, where);
  uint64_t value = static_cast<uint64_t>(unzigzag(read_uvarint(p, end, where)));
  if (block_size == 0 || block_size % 128 != 0 || block_size > (1u << 20) || miniblocks == 0 ||
      block_size % miniblocks != 0 || (block_size / miniblocks) % 32 != 0)
    fail(where, "bad DELTA_BINARY_PACKED block layout");
  if (total < count) fail(where, "DELTA_BINARY_PACKED holds fewer values than the page says");
  const size_t per_mini = block_size / miniblocks;
  auto emit = [&](size_t i, uint64_t v) {
    if (width == 4) {
      uint32_t x = static_cast<uint32_t>(v);
      std::memcpy(out + i * 4, &x, 4);
    } else {
      std::memcpy(out + i * 8, &v, 8);
    }
  };
  if (count == 0) return static_cast<size_t>(p - data);
  emit(0, value);
  size_t pos = 1;
  std::vector<uint8_t> widths(miniblocks);
  while (pos < count) {
    uint64_t min_delta = static_cast<uint64_t>(unzigzag(read_uvarint(p, end, where)));
    if (static_cast<uint64_t>(end - p) < miniblocks) fail(where, "DELTA_BINARY_PACKED bit widths run past the end");
    std::memcpy(widths.data(), p, miniblocks);
    p += miniblocks;
    for (size_t m = 0; m < miniblocks && pos < count; ++m) {
      int bw = widths[m];
      if (bw > 64) fail(where, "DELTA_BINARY_PACKED bit width above 64");
      size_t bytes = per_mini * bw / 8;
      if (static_cast<size_t>(end - p) < bytes) fail(where, "DELTA_BINARY_PACKED miniblock runs past the end");
      // Bit by bit: slow but simple, and only other writers' files use this encoding.
      for (size_t i = 0; i < per_mini && pos < count; ++i) {
        uint64_t d = 0;
        size_t bit = i * bw;
        for (int b = 0; b < bw; ++b, ++bit) d |= static_cast<uint64_t>((p[bit / 8] >> (bit % 8)) & 1) << b;
        value += min_delta + d;
        emit(pos++, value);
      }
      p += bytes;
    }
  }
  return static_cast<size_t>(p - data);
}

}  // namespace bkd::parquet

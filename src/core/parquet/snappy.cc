#include "core/parquet/snappy.h"

#include <cstring>
#include <vector>

#include "core/parquet/thrift_compact.h"
#include "core/util/error.h"

namespace bkd::parquet {

namespace {

void emit_literal(const uint8_t* p, size_t len, std::string& out) {
  while (len > 0) {
    size_t n = std::min<size_t>(len, 1u << 16);
    size_t code = n - 1;
    if (code < 60) {
      out.push_back(static_cast<char>(code << 2));
    } else if (code < 256) {
      out.push_back(static_cast<char>(60 << 2));
      out.push_back(static_cast<char>(code));
    } else {
      out.push_back(static_cast<char>(61 << 2));
      out.push_back(static_cast<char>(code & 0xff));
      out.push_back(static_cast<char>(code >> 8));
    }
    out.append(reinterpret_cast<const char*>(p), n);
    p += n, len -= n;
  }
}

// Copies with a 2-byte offset: 1..64 bytes each.
void emit_copy(size_t offset, size_t len, std::string& out) {
  while (len > 0) {
    size_t n = std::min<size_t>(len, 64);
    if (len - n > 0 && len - n < 4) n = len - 4;  // keep the remainder a worthwhile copy
    out.push_back(static_cast<char>(((n - 1) << 2) | 2));
    out.push_back(static_cast<char>(offset & 0xff));
    out.push_back(static_cast<char>(offset >> 8));
    len -= n;
  }
}

uint32_t load32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

}  // namespace

void snappy_compress(const uint8_t* in, size_t n, std::string& out) {
  put_uvarint(out, n);
  constexpr int kBits = 14;
  std::vector<uint32_t> table(1u << kBits, UINT32_MAX);
  size_t lit = 0, i = 0;
  while (n >= 4 && i + 4 <= n) {
    uint32_t h = (load32(in + i) * 0x1e35a7bdu) >> (32 - kBits);
    uint32_t cand = table[h];
    table[h] = static_cast<uint32_t>(i);
    if (cand != UINT32_MAX && i - cand < 65536 && load32(in + cand) == load32(in + i)) {
      size_t len = 4;
      while (i + len < n && in[cand + len] == in[i + len]) ++len;
      emit_literal(in + lit, i - lit, out);
      emit_copy(i - cand, len, out);
      i += len;
      lit = i;
    } else {
      ++i;
    }
  }
  emit_literal(in + lit, n - lit, out);
}

void snappy_decompress(const uint8_t* in, size_t n, uint8_t* out, size_t out_size, const std::string& where) {
  auto bad = [&](const std::string& what) {
    throw Error(where + ": snappy: " + what, "the file is damaged; re-create it");
  };
  const uint8_t* p = in;
  const uint8_t* end = in + n;
  uint64_t len = 0;
  for (int shift = 0;; shift += 7) {
    if (p >= end || shift > 35) bad("bad length header");
    uint8_t b = *p++;
    len |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
  }
  if (len != out_size) bad("block decompresses to " + std::to_string(len) + " bytes, header says " + std::to_string(out_size));
  size_t o = 0;
  while (p < end) {
    uint8_t tag = *p++;
    size_t length, offset;
    switch (tag & 3) {
      case 0: {
        length = tag >> 2;
        if (length >= 60) {
          int extra = static_cast<int>(length) - 59;
          if (end - p < extra) bad("literal length runs past the end");
          length = 0;
          for (int b = 0; b < extra; ++b) length |= static_cast<size_t>(p[b]) << (8 * b);
          p += extra;
        }
        ++length;
        if (length > static_cast<size_t>(end - p) || length > out_size - o) bad("literal runs past the end");
        std::memcpy(out + o, p, length);
        p += length, o += length;
        continue;
      }
      case 1:
        if (end - p < 1) bad("copy runs past the end");
        length = ((tag >> 2) & 7) + 4;
        offset = (static_cast<size_t>(tag >> 5) << 8) | p[0];
        p += 1;
        break;
      case 2:
        if (end - p < 2) bad("copy runs past the end");
        length = (tag >> 2) + 1;
        offset = p[0] | (static_cast<size_t>(p[1]) << 8);
        p += 2;
        break;
      default:
        if (end - p < 4) bad("copy runs past the end");
        length = (tag >> 2) + 1;
        offset = load32(p);
        p += 4;
        break;
    }
    if (offset == 0 || offset > o) bad("copy offset points before the start");
    if (length > out_size - o) bad("copy runs past the output");
    for (size_t k = 0; k < length; ++k, ++o) out[o] = out[o - offset];  // may overlap
  }
  if (o != out_size) bad("block ends after " + std::to_string(o) + " of " + std::to_string(out_size) + " bytes");
}

}  // namespace bkd::parquet

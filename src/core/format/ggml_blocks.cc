#include "core/format/ggml_blocks.h"

#include <cmath>
#include <cstring>

#include "core/util/error.h"

namespace bkd {
namespace {

constexpr int64_t kTq1Qs = 48, kTq1Qh = 4;

// Five trits (values 0..2, first most significant) as the byte ceil(v * 256 / 243).
uint8_t pack_trits(const int* t, int n) {
  int v = 0;
  for (int i = 0; i < n; ++i) v = v * 3 + t[i];
  for (int i = n; i < 5; ++i) v *= 3;
  return static_cast<uint8_t>((v * 256 + 242) / 243);
}
// Trit i (0 = most significant) of a packed byte: multiply by 3^i mod 256, then the top trit is
// (q * 3) >> 8.
int unpack_trit(uint8_t q, int i) {
  static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
  const uint8_t s = static_cast<uint8_t>(q * pow3[i]);
  return (static_cast<uint16_t>(s) * 3) >> 8;
}

void put_fp16(uint8_t* p, float v) {
  const uint16_t h = float_to_fp16(v);
  std::memcpy(p, &h, 2);
}
float get_fp16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_float(h);
}

// One block of 256 (TQ) or 32 (Q4_0) codes c = w + 1 in 0..2.
void encode_block(const int* c, GgmlType t, float d, uint8_t* out) {
  switch (t) {
    case GgmlType::TQ2_0:
      for (int h = 0; h < 2; ++h)
        for (int m = 0; m < 32; ++m) {
          uint8_t q = 0;
          for (int n = 0; n < 4; ++n) q |= static_cast<uint8_t>(c[128 * h + m + 32 * n] << (2 * n));
          out[32 * h + m] = q;
        }
      put_fp16(out + 64, d);
      return;
    case GgmlType::TQ1_0: {
      int tr[5];
      for (int m = 0; m < 32; ++m) {
        for (int n = 0; n < 5; ++n) tr[n] = c[m + 32 * n];
        out[m] = pack_trits(tr, 5);
      }
      for (int m = 0; m < 16; ++m) {
        for (int n = 0; n < 5; ++n) tr[n] = c[160 + m + 16 * n];
        out[32 + m] = pack_trits(tr, 5);
      }
      for (int j = 0; j < 4; ++j) {
        for (int n = 0; n < 4; ++n) tr[n] = c[240 + j + 4 * n];
        out[kTq1Qs + j] = pack_trits(tr, 4);
      }
      put_fp16(out + kTq1Qs + kTq1Qh, d);
      return;
    }
    case GgmlType::Q4_0:
      put_fp16(out, d);
      for (int j = 0; j < 16; ++j) out[2 + j] = static_cast<uint8_t>((c[j] + 7) | ((c[j + 16] + 7) << 4));  // nibble = w + 8
      return;
    default:
      throw Error(std::string("no ternary block encoding for ggml type ") + to_string(t));
  }
}

// Inverse of encode_block: codes c = w + 1 (any value the bytes hold) and the scale.
float decode_block(const uint8_t* in, GgmlType t, int* c) {
  switch (t) {
    case GgmlType::TQ2_0:
      for (int h = 0; h < 2; ++h)
        for (int m = 0; m < 32; ++m)
          for (int n = 0; n < 4; ++n) c[128 * h + m + 32 * n] = (in[32 * h + m] >> (2 * n)) & 3;
      return get_fp16(in + 64);
    case GgmlType::TQ1_0:
      for (int m = 0; m < 32; ++m)
        for (int n = 0; n < 5; ++n) c[m + 32 * n] = unpack_trit(in[m], n);
      for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 5; ++n) c[160 + m + 16 * n] = unpack_trit(in[32 + m], n);
      for (int j = 0; j < 4; ++j)
        for (int n = 0; n < 4; ++n) c[240 + j + 4 * n] = unpack_trit(in[kTq1Qs + j], n);
      return get_fp16(in + kTq1Qs + kTq1Qh);
    case GgmlType::Q4_0:
      for (int j = 0; j < 16; ++j) c[j] = (in[2 + j] & 15) - 7, c[j + 16] = (in[2 + j] >> 4) - 7;
      return get_fp16(in);
    default:
      throw Error(std::string("no ternary block encoding for ggml type ") + to_string(t));
  }
}

}  // namespace

uint16_t float_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const uint32_t abs = x & 0x7fffffffu;
  if (abs >= 0x7f800000u) return sign | 0x7c00 | (abs > 0x7f800000u ? 0x200 : 0);  // inf / nan
  if (abs >= 0x477ff000u) return sign | 0x7c00;                                     // rounds past 65504
  if (abs < 0x38800000u) {                                                           // fp16 subnormal or zero
    if (abs < 0x33000000u) return sign;
    const uint32_t mant = (abs & 0x7fffff) | 0x800000;
    const int shift = 126 - static_cast<int>(abs >> 23);  // 14..24
    uint32_t r = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return sign | static_cast<uint16_t>(r);
  }
  uint32_t r = ((abs - 0x38000000u) >> 13);  // rebias exponent 127 -> 15
  const uint32_t rem = abs & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;
  return sign | static_cast<uint16_t>(r);
}

float fp16_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  uint32_t x;
  if (exp == 0) {
    if (mant == 0) {
      x = sign;
    } else {  // subnormal: normalize
      int e = -1;
      uint32_t m = mant;
      do { ++e, m <<= 1; } while ((m & 0x400) == 0);
      x = sign | static_cast<uint32_t>(127 - 15 - e) << 23 | (m & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    x = sign | 0x7f800000u | mant << 13;
  } else {
    x = sign | (exp + 112) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &x, 4);
  return f;
}

int64_t ggml_block_weights(GgmlType t) {
  switch (t) {
    case GgmlType::TQ1_0:
    case GgmlType::TQ2_0: return 256;
    case GgmlType::Q4_0: return 32;
    default: throw Error(std::string("no ternary block encoding for ggml type ") + to_string(t));
  }
}

int64_t ggml_block_bytes(GgmlType t) {
  switch (t) {
    case GgmlType::TQ2_0: return 66;
    case GgmlType::TQ1_0: return 54;
    case GgmlType::Q4_0: return 18;
    default: throw Error(std::string("no ternary block encoding for ggml type ") + to_string(t));
  }
}

std::string encode_ternary_blocks(const TernaryMatrix& m, GgmlType t) {
  const int64_t bw = ggml_block_weights(t), bb = ggml_block_bytes(t);
  if (!ggml_fits_rows(t, m.cols))
    throw Error(std::string("rows of ") + std::to_string(m.cols) + " weights do not fit " + to_string(t) + " blocks of " +
                std::to_string(bw));
  const float d = fp16_to_float(float_to_fp16(m.scale));
  if (!(d > 0) || !std::isfinite(d))
    throw Error("ternary scale " + std::to_string(m.scale) + " is not representable in fp16 (6e-8 .. 65504)",
                "the student's weights are degenerate; check its training health report");
  std::string out(static_cast<size_t>(m.rows * (m.cols / bw) * bb), '\0');
  std::vector<int8_t> w(static_cast<size_t>(m.cols));
  std::vector<int> codes(static_cast<size_t>(bw));
  uint8_t* o = reinterpret_cast<uint8_t*>(out.data());
  for (int64_t r = 0; r < m.rows; ++r) {
    if (!unpack_ternary_row(m, r, w.data())) throw Error("ternary matrix holds an invalid code (row " + std::to_string(r) + ")");
    for (int64_t b = 0; b < m.cols / bw; ++b, o += bb) {
      for (int64_t k = 0; k < bw; ++k) codes[k] = w[b * bw + k] + 1;
      encode_block(codes.data(), t, m.scale, o);
    }
  }
  return out;
}

void decode_ternary_blocks(const std::string& bytes, GgmlType t, int64_t rows, int64_t cols, std::vector<int8_t>& w,
                           std::vector<float>& block_scale) {
  const int64_t bw = ggml_block_weights(t), bb = ggml_block_bytes(t);
  if (cols % bw != 0 || static_cast<int64_t>(bytes.size()) != rows * (cols / bw) * bb)
    throw Error(std::string(to_string(t)) + " data of " + std::to_string(bytes.size()) + " bytes does not hold a " +
                std::to_string(rows) + " x " + std::to_string(cols) + " matrix");
  w.assign(static_cast<size_t>(rows * cols), 0);
  block_scale.clear();
  std::vector<int> codes(static_cast<size_t>(bw));
  const uint8_t* in = reinterpret_cast<const uint8_t*>(bytes.data());
  for (int64_t blk = 0; blk < rows * cols / bw; ++blk, in += bb) {
    block_scale.push_back(decode_block(in, t, codes.data()));
    for (int64_t k = 0; k < bw; ++k) {
      if (codes[k] < 0 || codes[k] > 2)
        throw Error(std::string(to_string(t)) + " block " + std::to_string(blk) + " holds a non-ternary value");
      w[static_cast<size_t>(blk * bw + k)] = static_cast<int8_t>(codes[k] - 1);
    }
  }
}

}  // namespace bkd

#include "core/tokenizer/gpt2_pretokenizer.h"

#include <utf8proc.h>

namespace bkd {
namespace {

using C = Gpt2CharClass;

// ASCII classes, by byte. Letters and digits are \p{L} / \p{N}; the five C0 spaces and ' ' are \s.
struct AsciiTable {
  C cls[128];
  AsciiTable() {
    for (int b = 0; b < 128; ++b) {
      if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) cls[b] = C::kLetter;
      else if (b >= '0' && b <= '9') cls[b] = C::kNumber;
      else if (b == ' ' || (b >= '\t' && b <= '\r')) cls[b] = C::kSpace;
      else cls[b] = C::kOther;
    }
  }
};
const AsciiTable kAscii;

bool is_js_space(uint32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0xA0: case 0x1680:
    case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: case 0xFEFF:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

// Strict UTF-8 decoding of one code point (no overlongs, no surrogates, <= U+10FFFF).
// Returns its length, or 0 when p does not start a well-formed sequence.
int decode_utf8(const uint8_t* p, size_t n, uint32_t* cp) {
  const uint8_t b0 = p[0];
  auto cont = [&](size_t i) { return i < n && (p[i] & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (!cont(1)) return 0;
    *cp = (uint32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F);
    return 2;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    uint32_t c = (uint32_t(b0 & 0x0F) << 12) | (uint32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    if (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    uint32_t c = (uint32_t(b0 & 0x07) << 18) | (uint32_t(p[1] & 0x3F) << 12) |
                 (uint32_t(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
    if (c < 0x10000 || c > 0x10FFFF) return 0;
    *cp = c;
    return 4;
  }
  return 0;
}

inline Gpt2Char classify_inline(const uint8_t* p, size_t n) {
  if (p[0] < 0x80) return {kAscii.cls[p[0]], 1};
  return gpt2_classify(p, n);
}

// End of the run of code points of class `cls` that starts at `pos`.
inline size_t scan_run(const uint8_t* s, size_t n, size_t pos, C cls) {
  while (pos < n) {
    const Gpt2Char c = classify_inline(s + pos, n - pos);
    if (c.cls != cls) break;
    pos += c.len;
  }
  return pos;
}

}  // namespace

Gpt2CharClass gpt2_classify_code_point(uint32_t cp) {
  if (cp < 0x80) return kAscii.cls[cp];
  if (is_js_space(cp)) return C::kSpace;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
      return C::kLetter;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
      return C::kNumber;
    default:
      return C::kOther;
  }
}

Gpt2Char gpt2_classify(const uint8_t* p, size_t n) {
  if (p[0] < 0x80) return {kAscii.cls[p[0]], 1};
  uint32_t cp = 0;
  const int len = decode_utf8(p, n, &cp);
  if (len == 0) return {C::kOther, 1};  // invalid byte: its own code point of class Other
  return {gpt2_classify_code_point(cp), static_cast<uint8_t>(len)};
}

size_t gpt2_pretoken_end(std::string_view text, size_t pos) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  const uint8_t b = s[pos];
  // 's|'t|'re|'ve|'m|'ll|'d
  if (b == '\'' && pos + 1 < n) {
    const uint8_t c = s[pos + 1];
    if (c == 's' || c == 't' || c == 'm' || c == 'd') return pos + 2;
    if (pos + 2 < n) {
      const uint8_t d = s[pos + 2];
      if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return pos + 3;
    }
  }
  // ' ?\p{L}+' | ' ?\p{N}+' | ' ?[^\s\p{L}\p{N}]+' with the optional space present.
  if (b == ' ' && pos + 1 < n) {
    const Gpt2Char c1 = classify_inline(s + pos + 1, n - pos - 1);
    if (c1.cls != C::kSpace) return scan_run(s, n, pos + 1 + c1.len, c1.cls);
  }
  const Gpt2Char c0 = classify_inline(s + pos, n - pos);
  if (c0.cls != C::kSpace) return scan_run(s, n, pos + c0.len, c0.cls);
  // '\s+(?!\S)': the whitespace run, less its last code point when a non-space follows;
  // '\s+' when that would leave nothing (a single space before a non-space).
  size_t end = pos + c0.len, last = pos;
  while (end < n) {
    const Gpt2Char c = classify_inline(s + end, n - end);
    if (c.cls != C::kSpace) break;
    last = end;
    end += c.len;
  }
  if (end == n) return n;
  return last > pos ? last : end;
}

std::vector<size_t> gpt2_pretoken_ends(std::string_view text) {
  std::vector<size_t> ends;
  for (size_t pos = 0; pos < text.size();) {
    pos = gpt2_pretoken_end(text, pos);
    ends.push_back(pos);
  }
  return ends;
}

}  // namespace bkd

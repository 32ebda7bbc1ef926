#include "core/tokenizer/hf_pretokenizer.h"

#include <utf8proc.h>

namespace bkd {
namespace {

using C = HfCharClass;

constexpr std::string_view kGpt2Regex = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kLlama3Regex =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view kQwen2Regex =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

struct AsciiClasses {
  C cls[128];
  AsciiClasses() {
    for (int b = 0; b < 128; ++b) {
      if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) cls[b] = C::kLetter;
      else if (b >= '0' && b <= '9') cls[b] = C::kNumber;
      else if (b == '\r' || b == '\n') cls[b] = C::kNewline;
      else if (b == ' ' || b == '\t' || b == '\v' || b == '\f') cls[b] = C::kSpace;
      else cls[b] = C::kOther;
    }
  }
};
const AsciiClasses kAscii;

struct Char {
  C cls;
  uint8_t len;  // bytes; 1 for a byte that is not UTF-8
};

inline Char classify_at(const uint8_t* s, size_t n, size_t pos) {
  if (s[pos] < 0x80) return {kAscii.cls[s[pos]], 1};
  uint32_t cp = 0;
  const int len = hf_decode_utf8(s + pos, n - pos, &cp);
  if (len == 0) return {C::kOther, 1};
  return {hf_classify_code_point(cp), static_cast<uint8_t>(len)};
}

inline bool is_ws(C c) { return c == C::kSpace || c == C::kNewline; }

// End of the run of code points of class `cls` (whitespace counts as one class when cls is a space).
inline size_t scan_run(const uint8_t* s, size_t n, size_t pos, C cls) {
  while (pos < n) {
    const Char c = classify_at(s, n, pos);
    if (is_ws(cls) ? !is_ws(c.cls) : c.cls != cls) break;
    pos += c.len;
  }
  return pos;
}

inline uint8_t lower(uint8_t b) { return (b >= 'A' && b <= 'Z') ? b + 32 : b; }

// Length of the contraction after an apostrophe at s[pos] ('s 't 're 've 'm 'll 'd), 0 if none.
// With fold: any case, and U+017F LONG S for s (Unicode case folding, as (?i:) in Oniguruma).
size_t contraction_len(const uint8_t* s, size_t n, size_t pos, bool fold) {
  if (pos + 1 >= n) return 0;
  auto at = [&](size_t i) -> uint8_t { return i < n ? (fold ? lower(s[i]) : s[i]) : 0; };
  const uint8_t c = at(pos + 1);
  if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
  if (fold && s[pos + 1] == 0xC5 && pos + 2 < n && s[pos + 2] == 0xBF) return 3;  // 'ſ
  const uint8_t d = at(pos + 2);
  if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return 3;
  return 0;
}

// The whitespace alternatives at pos (a \s code point): '\s*[\r\n]+' (Llama-3/Qwen only), then
// '\s+(?!\S)', then '\s+'.
size_t whitespace_end(const uint8_t* s, size_t n, size_t pos, bool newline_rule) {
  size_t end = pos, last_start = pos, newline_end = 0;
  while (end < n) {
    const Char c = classify_at(s, n, end);
    if (!is_ws(c.cls)) break;
    last_start = end;
    end += c.len;
    if (c.cls == C::kNewline) newline_end = end;
  }
  if (newline_rule && newline_end > 0) return newline_end;  // up to and with the run's last CR/LF
  if (end == n) return n;
  return last_start > pos ? last_start : end;  // leave the last space to the word that follows
}

size_t gpt2_end(const uint8_t* s, size_t n, size_t pos) {
  if (s[pos] == '\'') {
    const size_t k = contraction_len(s, n, pos, false);
    if (k) return pos + k;
  }
  // ' ?\p{L}+' | ' ?\p{N}+' | ' ?[^\s\p{L}\p{N}]+' with the optional space taken.
  if (s[pos] == ' ' && pos + 1 < n) {
    const Char c1 = classify_at(s, n, pos + 1);
    if (!is_ws(c1.cls)) return scan_run(s, n, pos + 1 + c1.len, c1.cls);
  }
  const Char c0 = classify_at(s, n, pos);
  if (!is_ws(c0.cls)) return scan_run(s, n, pos + c0.len, c0.cls);
  return whitespace_end(s, n, pos, false);
}

size_t llama_end(const uint8_t* s, size_t n, size_t pos, size_t max_digits) {
  if (s[pos] == '\'') {
    const size_t k = contraction_len(s, n, pos, true);
    if (k) return pos + k;
  }
  const Char c0 = classify_at(s, n, pos);
  // '[^\r\n\p{L}\p{N}]?\p{L}+'
  if (c0.cls == C::kLetter) return scan_run(s, n, pos + c0.len, C::kLetter);
  if ((c0.cls == C::kSpace || c0.cls == C::kOther) && pos + c0.len < n) {
    const Char c1 = classify_at(s, n, pos + c0.len);
    if (c1.cls == C::kLetter) return scan_run(s, n, pos + c0.len + c1.len, C::kLetter);
  }
  // '\p{N}{1,3}' (Llama-3) or '\p{N}' (Qwen2)
  if (c0.cls == C::kNumber) {
    size_t end = pos + c0.len;
    for (size_t k = 1; k < max_digits && end < n; ++k) {
      const Char c = classify_at(s, n, end);
      if (c.cls != C::kNumber) break;
      end += c.len;
    }
    return end;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  size_t p = pos;
  if (s[pos] == ' ' && pos + 1 < n && classify_at(s, n, pos + 1).cls == C::kOther) p = pos + 1;
  if (p > pos || c0.cls == C::kOther) {
    size_t end = scan_run(s, n, p, C::kOther);
    while (end < n && (s[end] == '\r' || s[end] == '\n')) ++end;
    return end;
  }
  return whitespace_end(s, n, pos, true);
}

}  // namespace

bool hf_split_pattern(std::string_view regex, HfSplitPattern* out) {
  if (regex == kGpt2Regex) *out = HfSplitPattern::kGpt2;
  else if (regex == kLlama3Regex) *out = HfSplitPattern::kLlama3;
  else if (regex == kQwen2Regex) *out = HfSplitPattern::kQwen2;
  else return false;
  return true;
}

const char* hf_split_pattern_name(HfSplitPattern p) {
  switch (p) {
    case HfSplitPattern::kGpt2: return "GPT-2";
    case HfSplitPattern::kLlama3: return "Llama-3";
    case HfSplitPattern::kQwen2: return "Qwen2";
  }
  return "?";
}

bool hf_is_white_space(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || (cp >= '\t' && cp <= '\r');
  if (cp == 0x85) return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_ZS: case UTF8PROC_CATEGORY_ZL: case UTF8PROC_CATEGORY_ZP:
      return true;
    default:
      return false;
  }
}

HfCharClass hf_classify_code_point(uint32_t cp) {
  if (cp < 0x80) return kAscii.cls[cp];
  if (hf_is_white_space(cp)) return C::kSpace;
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

int hf_decode_utf8(const uint8_t* p, size_t n, uint32_t* cp) {
  const uint8_t b0 = p[0];
  auto cont = [&](size_t i) { return i < n && (p[i] & 0xC0) == 0x80; };
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (!cont(1)) return 0;
    *cp = (uint32_t(b0 & 0x1F) << 6) | (p[1] & 0x3F);
    return 2;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    const uint32_t c = (uint32_t(b0 & 0x0F) << 12) | (uint32_t(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
    if (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF)) return 0;  // overlong or surrogate
    *cp = c;
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const uint32_t c = (uint32_t(b0 & 0x07) << 18) | (uint32_t(p[1] & 0x3F) << 12) | (uint32_t(p[2] & 0x3F) << 6) |
                       (p[3] & 0x3F);
    if (c < 0x10000 || c > 0x10FFFF) return 0;
    *cp = c;
    return 4;
  }
  return 0;
}

size_t hf_pretoken_end(HfSplitPattern p, std::string_view text, size_t pos) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  switch (p) {
    case HfSplitPattern::kGpt2: return gpt2_end(s, text.size(), pos);
    case HfSplitPattern::kLlama3: return llama_end(s, text.size(), pos, 3);
    case HfSplitPattern::kQwen2: return llama_end(s, text.size(), pos, 1);
  }
  return text.size();
}

std::vector<size_t> hf_pretoken_ends(HfSplitPattern p, std::string_view text) {
  std::vector<size_t> ends;
  for (size_t pos = 0; pos < text.size();) {
    pos = hf_pretoken_end(p, text, pos);
    ends.push_back(pos);
  }
  return ends;
}

}  // namespace bkd

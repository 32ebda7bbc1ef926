#pragma once
// GPT-2's pre-tokenizer, written by hand (no std::regex: it is slow and has no \p{..} classes):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// with the semantics of the JavaScript reference (gpt-3-encoder, /u flag):
//   - \s is JavaScript's \s: TAB LF VT FF CR, every Zs space (U+0020, U+00A0, U+1680, U+2000..U+200A,
//     U+202F, U+205F, U+3000), U+2028, U+2029 and U+FEFF. Not U+0085, not U+001C..U+001F.
//   - \p{L} and \p{N} come from utf8proc's general categories (L*, N*). utf8proc's Unicode version may
//     lag node's by a release (Debian 12: utf8proc 2.8 = Unicode 15.0): letters added since are Other.
//   - the contractions are ASCII and case-sensitive ('S is not a contraction).
// Invalid UTF-8: each byte that does not start a well-formed sequence is its own code point of class
// Other (like a punctuation mark), so every input has one defined, crash-free split and the pieces
// still tile the input byte for byte.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace bkd {

enum class Gpt2CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

struct Gpt2Char {
  Gpt2CharClass cls;
  uint8_t len;  // bytes of the code point (1 for an invalid byte)
};

// Class and length of the code point starting at p (n >= 1 bytes available).
Gpt2Char gpt2_classify(const uint8_t* p, size_t n);

// Classifies one code point (no UTF-8 decoding); exposed for tests.
Gpt2CharClass gpt2_classify_code_point(uint32_t cp);

// End (exclusive byte offset) of the pre-token that starts at `pos` (< text.size()).
size_t gpt2_pretoken_end(std::string_view text, size_t pos);

// All pre-token end offsets, in order; the pieces tile the text. For tests and tools.
std::vector<size_t> gpt2_pretoken_ends(std::string_view text);

}  // namespace bkd

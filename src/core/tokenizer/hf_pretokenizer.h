#pragma once
// The split patterns of Hugging Face byte-level BPE tokenizers, written by hand (std::regex has no
// \p{..}). hf_split_pattern() recognizes the pattern string of a tokenizer.json exactly; any other
// pattern is refused by the loader, naming it.
//
//   kGpt2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//            (ByteLevel with use_regex true: GPT-2, RoBERTa-style files)
//   kLlama3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   kQwen2   the same with \p{N} (one digit per pre-token) instead of \p{N}{1,3}
//
// Semantics are those of the Rust `tokenizers` library (Oniguruma), which is what the models were
// trained with, where the JavaScript port (transformers.js) differs:
//   - \s is Unicode White_Space: TAB LF VT FF CR, U+0085, and the Zs/Zl/Zp separators. Not U+FEFF
//     (JavaScript's \s has U+FEFF and lacks U+0085).
//   - (?i:...) folds case the Unicode way, so "'ſ" (U+017F LONG S) is the contraction "'s".
//   - \p{L} / \p{N} come from utf8proc's general categories (Debian 12: Unicode 15.0).
// Input that is not UTF-8: each byte that does not start a well-formed sequence is one code point of
// class Other, so every input has one crash-free split whose pieces tile it byte for byte.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace bkd {

enum class HfSplitPattern : uint8_t { kGpt2, kLlama3, kQwen2 };

// The pattern a tokenizer.json regex string stands for; false when it is none of the three.
bool hf_split_pattern(std::string_view regex, HfSplitPattern* out);
const char* hf_split_pattern_name(HfSplitPattern p);

// kNewline is CR or LF (the patterns single them out); kSpace is every other \s code point.
enum class HfCharClass : uint8_t { kLetter, kNumber, kNewline, kSpace, kOther };
HfCharClass hf_classify_code_point(uint32_t cp);

// End (exclusive byte offset) of the pre-token starting at pos (< text.size()).
size_t hf_pretoken_end(HfSplitPattern p, std::string_view text, size_t pos);

// All pre-token ends in order (the pieces tile the text). For tests and tools.
std::vector<size_t> hf_pretoken_ends(HfSplitPattern p, std::string_view text);

// Length of the well-formed UTF-8 code point at p (n >= 1 bytes available), 0 when p[0] does not
// start one; *cp receives the code point.
int hf_decode_utf8(const uint8_t* p, size_t n, uint32_t* cp);

// Unicode White_Space (Rust's char::is_whitespace): the \s above, as a code point test.
bool hf_is_white_space(uint32_t cp);

}  // namespace bkd

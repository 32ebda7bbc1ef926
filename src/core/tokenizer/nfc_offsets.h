#pragma once
// NFC normalization (utf8proc) that remembers where each normalized byte came from, so tokens of the
// normalized text can report byte spans in the original text.
//
// The text is cut into chunks that normalize independently: a chunk starts at a code point that
// nothing before it can combine or reorder with (its canonical decomposition starts with a starter
// that is never the second half of a composition), and NFC(text) is the concatenation of the chunks'
// NFC. Chunks NFC leaves alone map byte for byte. A chunk NFC changes (e.g. "e" + U+0301 -> "é") maps
// as a whole: its first normalized byte maps to the chunk's first source byte and every later
// normalized byte to the chunk's end. So a token holding the start of a changed chunk spans all of
// the chunk's source bytes, a token that starts inside it gets an empty span at its end, and spans
// stay ordered and tile the source.
//
// Bytes that are not UTF-8 are kept as they are, each its own chunk.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bkd {

// Returns false when NFC leaves src unchanged (then *out and *source_of are left alone). Otherwise
// *out = NFC(src) and *source_of has out->size() + 1 entries: the source offset of every normalized
// offset (the last one is src.size()).
bool nfc_with_offsets(std::string_view src, std::string* out, std::vector<uint32_t>* source_of);

// NFC of the text, with the same treatment of bytes that are not UTF-8 (for tests and decode checks).
std::string nfc(std::string_view src);

}  // namespace bkd

#pragma once
// Token text versus token bytes. Byte-level tokenizers split UTF-8 characters across tokens, so a
// token's bytes need not be valid UTF-8 on their own. OpenAI then shows the token as
// "bytes:\xe2\x80" and sends the raw bytes in `bytes`; the exact text is the concatenation of bytes.
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace bkd {

bool is_valid_utf8(const std::string& s);
// The token's display string: the bytes themselves when valid UTF-8, else "bytes:\xNN..." escapes.
std::string token_display_text(const std::string& bytes);
// Inverse of the escape form ("bytes:\xe2\x80" -> two raw bytes); other strings are returned as is.
std::string bytes_from_display_text(const std::string& text);
// A JSON array of ints (OpenAI `bytes`) -> raw bytes; throws bkd::Error on values outside 0..255.
std::string bytes_from_json_array(const nlohmann::json& arr);
std::vector<int> bytes_to_ints(const std::string& bytes);
// Replaces every invalid UTF-8 sequence with U+FFFD (for human-facing JSON such as reports).
std::string to_valid_utf8(const std::string& s);

}  // namespace bkd

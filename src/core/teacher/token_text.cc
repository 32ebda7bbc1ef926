#include "core/teacher/token_text.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/util/error.h"

namespace bkd {

namespace {
// Length of the valid UTF-8 sequence at s[i], or 0 when invalid.
size_t utf8_seq_len(const std::string& s, size_t i) {
  const size_t n = s.size();
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > n) return 0;
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
  for (size_t k = 1; k < len; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc >> 6) != 0x2) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}
}  // namespace

std::string to_valid_utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t len = utf8_seq_len(s, i);
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s, i, len);
      i += len;
    }
  }
  return out;
}

bool is_valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    size_t len = utf8_seq_len(s, i);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

std::string token_display_text(const std::string& bytes) {
  if (is_valid_utf8(bytes)) return bytes;
  std::string out = "bytes:";
  char buf[8];
  for (unsigned char c : bytes) {
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
  }
  return out;
}

std::string bytes_from_display_text(const std::string& text) {
  if (text.rfind("bytes:", 0) != 0) return text;
  std::string out;
  size_t i = 6;
  while (i + 3 < text.size() && text[i] == '\\' && (text[i + 1] == 'x' || text[i + 1] == 'X')) {
    out.push_back(static_cast<char>(std::stoi(text.substr(i + 2, 2), nullptr, 16)));
    i += 4;
  }
  return i == text.size() ? out : text;
}

std::string bytes_from_json_array(const nlohmann::json& arr) {
  std::string out;
  for (const auto& v : arr) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 255)
      throw Error("token `bytes` holds " + v.dump() + ", not a byte value 0..255");
    out.push_back(static_cast<char>(v.get<int>()));
  }
  return out;
}

std::vector<int> bytes_to_ints(const std::string& bytes) {
  std::vector<int> v;
  v.reserve(bytes.size());
  for (unsigned char c : bytes) v.push_back(c);
  return v;
}

}  // namespace bkd

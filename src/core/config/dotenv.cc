#include "core/config/dotenv.h"

#include <cctype>

namespace bkd {
namespace {

bool key_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool key_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
bool blank(char c) { return c == ' ' || c == '\t'; }

class Parser {
 public:
  Parser(const std::string& text, DotenvFile& out) : s_(text), out_(out) {}

  void run() {
    if (s_.size() >= 3 && s_.compare(0, 3, "\xEF\xBB\xBF") == 0) i_ = 3;  // UTF-8 BOM
    while (i_ < s_.size()) parse_line();
  }

 private:
  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool at_eol() const { return i_ >= s_.size() || s_[i_] == '\n' || (s_[i_] == '\r' && i_ + 1 < s_.size() && s_[i_ + 1] == '\n'); }
  void skip_blanks() { while (i_ < s_.size() && blank(s_[i_])) ++i_; }
  void next_line() {
    while (i_ < s_.size() && s_[i_] != '\n') ++i_;
    if (i_ < s_.size()) ++i_;
    ++line_;
  }
  void problem(const std::string& msg) { out_.problems.push_back({line_, msg}); }
  void fail_line(const std::string& msg) { problem(msg); next_line(); }

  void parse_line() {
    skip_blanks();
    if (at_eol()) { next_line(); return; }
    if (peek() == '#') { next_line(); return; }
    if (s_.compare(i_, 7, "export ") == 0 || s_.compare(i_, 7, "export\t") == 0) {
      i_ += 7;
      skip_blanks();
    }
    const int key_line = line_;
    size_t k0 = i_;
    if (!key_start(peek())) {
      if (peek() == '=') return fail_line("missing key before '='");
      return fail_line("a key must start with a letter or '_' (found '" + printable(peek()) + "')");
    }
    while (i_ < s_.size() && key_char(s_[i_])) ++i_;
    std::string key = s_.substr(k0, i_ - k0);
    skip_blanks();
    if (at_eol()) return fail_line("'" + key + "' has no '=': write " + key + "=VALUE");
    if (peek() != '=') {
      if (blank(s_[i_ - 1]) || key_char(peek()) || peek() == '-' || peek() == '.')
        return fail_line("invalid key near '" + key + "': keys are letters, digits and '_', followed by '='");
      return fail_line("invalid character '" + printable(peek()) + "' in key '" + key + "'");
    }
    ++i_;  // '='
    skip_blanks();
    DotenvEntry e{key, "", true, key_line};
    if (peek() == '\'') {
      if (!parse_single(e.value)) return;
      e.expand = false;
    } else if (peek() == '"') {
      if (!parse_double(e.value)) return;
    } else {
      parse_unquoted(e.value);
    }
    out_.entries.push_back(std::move(e));
  }

  // After a closing quote only blanks and a comment may follow.
  bool finish_quoted(const std::string& key_hint) {
    skip_blanks();
    if (at_eol()) { next_line(); return true; }
    if (peek() == '#') { next_line(); return true; }
    fail_line("unexpected text after the closing quote" + key_hint);
    return false;
  }

  bool parse_single(std::string& v) {
    const int start_line = line_;
    ++i_;
    while (i_ < s_.size() && s_[i_] != '\'') {
      if (s_[i_] == '\n') {
        out_.problems.push_back({start_line, "unterminated single quote: add the closing '"});
        next_line();
        return false;
      }
      v += s_[i_++];
    }
    if (i_ >= s_.size()) {
      out_.problems.push_back({start_line, "unterminated single quote: add the closing '"});
      return false;
    }
    ++i_;
    return finish_quoted("");
  }

  bool parse_double(std::string& v) {
    const int start_line = line_;
    ++i_;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_];
      if (c == '\\') {
        if (i_ + 1 >= s_.size()) break;
        char n = s_[i_ + 1];
        switch (n) {
          case 'n': v += '\n'; break;
          case 't': v += '\t'; break;
          case 'r': v += '\r'; break;
          case '"': v += '"'; break;
          case '\\': v += '\\'; break;
          case '$': v += "\\$"; break;  // kept escaped for the expander
          default:
            problem("unknown escape '\\" + printable(n) + "' in double-quoted value (use \\\\ for a backslash)");
            v += n;
        }
        i_ += 2;
        continue;
      }
      if (c == '\n') ++line_;
      if (c == '\r' && i_ + 1 < s_.size() && s_[i_ + 1] == '\n') { ++i_; continue; }
      v += c;
      ++i_;
    }
    if (i_ >= s_.size()) {
      out_.problems.push_back({start_line, "unterminated double quote: add the closing \""});
      return false;
    }
    ++i_;
    return finish_quoted("");
  }

  void parse_unquoted(std::string& v) {
    size_t start = i_;
    while (!at_eol()) {
      if (s_[i_] == '#' && i_ > start && blank(s_[i_ - 1])) break;  // inline comment
      if (s_[i_] == '"' || s_[i_] == '\'') {
        problem(std::string("stray quote in unquoted value: quote the whole value or escape it"));
      }
      ++i_;
    }
    v = s_.substr(start, i_ - start);
    while (!v.empty() && (blank(v.back()) || v.back() == '\r')) v.pop_back();
    next_line();
  }

  static std::string printable(char c) {
    if (c == '\0') return "end of file";
    if (static_cast<unsigned char>(c) < 0x20) return "\\x" + std::to_string(static_cast<int>(c));
    return std::string(1, c);
  }

  const std::string& s_;
  DotenvFile& out_;
  size_t i_ = 0;
  int line_ = 1;
};

}  // namespace

DotenvFile parse_dotenv(const std::string& text, const std::string& path) {
  DotenvFile f;
  f.path = path;
  if (text.find('\0') != std::string::npos) {
    f.problems.push_back({1, "file contains NUL bytes: is it a text file?"});
    return f;
  }
  Parser(text, f).run();
  return f;
}

}  // namespace bkd

#include "core/config/dotenv.h"

#include <gtest/gtest.h>

using bkd::parse_dotenv;

TEST(Dotenv, ParsesTheSyntaxUsersWrite) {
  auto f = parse_dotenv(
      "# comment\n"
      "A=plain\n"
      "export B=exported\n"
      "C = spaced  # trailing comment\n"
      "D='single ${NOT} expanded'\n"
      "E=\"double \\\"quoted\\\"\\n\"\n"
      "F=\"multi\nline\"\n"
      "G=\r\n"
      "H=crlf\r\n"
      "I=a#b\n",
      "x.env");
  ASSERT_TRUE(f.problems.empty()) << f.problems[0].message;
  ASSERT_EQ(f.entries.size(), 9u);
  EXPECT_EQ(f.entries[0].value, "plain");
  EXPECT_EQ(f.entries[1].key, "B");
  EXPECT_EQ(f.entries[2].value, "spaced");
  EXPECT_EQ(f.entries[3].value, "single ${NOT} expanded");
  EXPECT_FALSE(f.entries[3].expand);
  EXPECT_EQ(f.entries[4].value, "double \"quoted\"\n");
  EXPECT_EQ(f.entries[5].value, "multi\nline");
  EXPECT_EQ(f.entries[6].value, "");
  EXPECT_EQ(f.entries[7].value, "crlf");
  EXPECT_EQ(f.entries[7].line, 10);  // the double-quoted value above spans two lines
  EXPECT_EQ(f.entries[8].value, "a#b");
}

TEST(Dotenv, BomIsSkipped) {
  auto f = parse_dotenv("\xEF\xBB\xBF" "A=1\n", "x.env");
  ASSERT_TRUE(f.problems.empty());
  EXPECT_EQ(f.entries.at(0).key, "A");
}

struct BadCase {
  const char* text;
  int line;
  const char* needle;
};

TEST(Dotenv, SyntaxErrorsNameTheLineAndTheFix) {
  const BadCase cases[] = {
      {"=value\n", 1, "missing key"},
      {"A=1\nNOEQUALS\n", 2, "has no '='"},
      {"1ABC=x\n", 1, "must start with a letter"},
      {"MY-KEY=x\n", 1, "invalid key"},
      {"A='unterminated\n", 1, "unterminated single quote"},
      {"A=\"unterminated\nB=2\n", 1, "unterminated double quote"},
      {"A=\"x\" trailing\n", 1, "after the closing quote"},
      {"A='x' trailing\n", 1, "after the closing quote"},
      {"A=\"bad \\q escape\"\n", 1, "unknown escape"},
      {"A=ab\"c\n", 1, "stray quote"},
      {"A B=1\n", 1, "invalid key"},
      {"A=1\n\0B=2\n", 1, "NUL"},
  };
  for (const auto& c : cases) {
    std::string text(c.text, c.text + std::char_traits<char>::length(c.text));
    if (std::string(c.needle) == "NUL") text = std::string("A=1\n\0B=2\n", 9);
    auto f = parse_dotenv(text, "x.env");
    ASSERT_FALSE(f.problems.empty()) << "accepted: " << c.text;
    EXPECT_EQ(f.problems[0].line, c.line) << c.text;
    EXPECT_NE(f.problems[0].message.find(c.needle), std::string::npos) << c.text << " -> " << f.problems[0].message;
  }
}

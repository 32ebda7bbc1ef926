#pragma once
// dotenv parser: KEY=VALUE lines, '#' comments, optional `export ` prefix, single quotes (literal),
// double quotes (escapes \n \t \" \\ \$, may span lines), unquoted values with trailing ` # comment`,
// CRLF line ends. `${VAR}` references are kept raw here and expanded by Settings after merging.
#include <string>
#include <vector>

namespace bkd {

struct DotenvEntry {
  std::string key;
  std::string value;  // unescaped, references not yet expanded
  bool expand;        // false for single-quoted values
  int line;           // 1-based line of the key
};

struct DotenvProblem {
  int line;
  std::string message;
};

struct DotenvFile {
  std::string path;
  std::vector<DotenvEntry> entries;
  std::vector<DotenvProblem> problems;  // syntax errors; parsing continues at the next line
};

DotenvFile parse_dotenv(const std::string& text, const std::string& path);

}  // namespace bkd

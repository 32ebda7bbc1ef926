#pragma once
// Projection of a teacher's top-K distributions onto the student tokenizer (DESIGN.md §4):
//   - alignment by byte offset: a student position whose token starts exactly where a teacher token
//     starts receives that teacher position's distribution; every other position gets CE only
//     (kd_valid = false, safe padding P(Other) = 1);
//   - first-subtoken rule: each teacher candidate string is encoded with the student tokenizer in a
//     neutral continuation context, and its first student token receives the candidate's log-prob;
//   - log-sum-exp dedup: candidates that land on the same student token merge;
//   - candidates that encode to nothing, or whose first student token depends on bytes the candidate
//     does not have (it ends inside a UTF-8 character), go to Other, in log space;
//   - mid-token rows (KD_MID_TOKEN, off by default): a student token that starts inside teacher token
//     i, after the bytes P = text[begin_i, s) of it, gets the distribution of teacher position i
//     conditioned on P: the candidates whose bytes start with P and go on past it, each projected by
//     the first student subtoken of what follows P, their log-probs renormalized over those candidates
//     (log-sum-exp). The teacher's own Other is left out of the conditioning (how much of it continues
//     P is unknown); a candidate that continues P but whose remainder has no certain first subtoken
//     stays in the normalizer and goes to Other. No candidate continuing P: CE only, as before.
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/kd/kd_accounting.h"
#include "core/teacher/provider.h"
#include "core/tokenizer/tokenizer.h"

namespace bkd {

// Why a position carries no KD target.
// Why a position carries no KD target (the classes of KdRowCounts, core/kd/kd_accounting.h).
enum class KdInvalid : uint8_t { None = 0, NoTeacherToken, NoLogprobs, NotFinite, OutsideRange, Misaligned };

struct ProjectedPosition {
  int32_t token_id = 0;  // the student's actual token (hard target)
  bool kd_valid = false;
  KdInvalid reason = KdInvalid::OutsideRange;
  std::vector<int32_t> ids;     // projected top-K, most likely first, no duplicates
  std::vector<float> logprobs;  // natural-log probabilities
  float other_logprob = 0.0f;   // log mass outside ids (0 = all mass, the safe padding)
};

struct ProjectionStats {
  int64_t positions = 0;          // student positions seen
  int64_t kd_positions = 0;       // with kd_valid
  int64_t in_range = 0;           // positions inside the KD range (e.g. the generated part)
  int64_t no_teacher_token = 0;   // in range, but no teacher token starts there
  int64_t no_logprobs = 0;        // the teacher gave no usable top-K there
  int64_t not_finite = 0;         // NaN / inf values
  int64_t misaligned = 0;         // in range, but the teacher's tokens do not spell the sequence text
  int64_t candidates = 0;         // teacher candidates projected
  int64_t merged = 0;             // candidates merged into an earlier one by log-sum-exp
  int64_t to_other = 0;           // candidates that went to Other
  int64_t mid_token = 0;          // kd positions derived inside a teacher token (KD_MID_TOKEN)
  double sum_other_mass = 0;      // over kd positions
  double sum_topk_mass = 0;       // over kd positions
  void add(const ProjectionStats& o);
  // The same positions in the shared row classes (kd, outside range, no teacher boundary, failures).
  KdRowCounts row_counts() const;
};

class StudentProjector {
 public:
  // `identity` (same-tokenizer KD, STUDENT_TOKENIZER=teacher): a candidate's teacher id is its student
  // id; each id is checked once against the bytes the candidate spells, and a mismatch (the tokenizers
  // differ after all) is an Error, not a silent fallback. Alignment by byte offset is unchanged.
  explicit StudentProjector(const Tokenizer& student, bool mid_token_rows = false, bool identity = false);

  // The student token a candidate string starts with, or -1 when it goes to Other. Cached; thread-safe.
  int32_t first_subtoken(const std::string& candidate_bytes);

  // Projects one sequence. `text` is the whole sequence; `student` its student tokenization (spans
  // into text); `teacher` the teacher's tokens over the same text, each with its byte span and the
  // distribution it was predicted from. Only student positions whose token starts at or after
  // `kd_begin` are in the KD range (generate mode: the continuation, not the prompt).
  std::vector<ProjectedPosition> project(const std::string& text, const std::vector<TokenSpan>& student,
                                         const std::vector<TokenSpan>& teacher_spans,
                                         const std::vector<GeneratedToken>& teacher, uint32_t kd_begin,
                                         ProjectionStats* stats);
  // A sequence whose teacher tokens could not be aligned with its text: every position in range is
  // counted `misaligned` (CE only), the others outside the range.
  std::vector<ProjectedPosition> unaligned(const std::vector<TokenSpan>& student, uint32_t kd_begin,
                                           ProjectionStats* stats) const;

 private:
  int32_t compute_first_subtoken(const std::string& bytes) const;
  // One candidate onto its first student subtoken: merged by log-sum-exp with an earlier one there,
  // or into `other` when it has no certain first subtoken.
  void add_candidate(int32_t id, double logprob, std::vector<std::pair<int32_t, double>>& merged, double& other,
                     ProjectionStats& st);
  // The student id of a whole teacher candidate: itself (identity, checked) or its first subtoken.
  int32_t student_id(const TokenCandidate& c);
  int32_t identity_id(const TokenCandidate& c);
  // Fills `pos` from teacher token `t` conditioned on the bytes `prefix` already emitted; false when no
  // candidate continues them.
  bool project_mid_token(const GeneratedToken& t, const std::string& prefix, ProjectedPosition& pos, ProjectionStats& st);
  const Tokenizer& student_;
  bool mid_token_rows_, identity_;
  std::mutex mu_;
  std::unordered_map<std::string, int32_t> cache_;
  std::unordered_map<int32_t, std::string> identity_bytes_;  // ids checked so far: their student bytes
};

// Length of the longest prefix of `s` that is complete, valid UTF-8.
size_t valid_utf8_prefix(const std::string& s);

}  // namespace bkd

#include "core/kd/projection.h"

#include <algorithm>
#include <cmath>

#include "core/teacher/logprob_math.h"
#include "core/teacher/token_text.h"
#include "core/util/error.h"

namespace bkd {
namespace {

// A newline never merges with anything in the student vocabulary (it is a byte-fallback token), so
// "\n" + candidate tokenizes the candidate as it would start a token in running text.
constexpr char kNeutralContext = '\n';

double log_add(double a, double b) {
  if (a == -INFINITY) return b;
  if (b == -INFINITY) return a;
  const double m = std::max(a, b);
  return m + std::log(std::exp(a - m) + std::exp(b - m));
}

// The teacher token whose bytes hold offset s strictly inside them (begin < s < end), or n. Teacher
// tokens follow each other through the text, so the last one that begins before s is the candidate.
size_t covering_token(const std::vector<TokenSpan>& spans, size_t n, uint32_t s) {
  const auto end = spans.begin() + std::min(spans.size(), n);
  const auto after = std::upper_bound(spans.begin(), end, s, [](uint32_t v, const TokenSpan& t) { return v <= t.begin; });
  if (after == spans.begin()) return n;
  const size_t i = size_t(after - spans.begin()) - 1;
  return spans[i].begin < s && s < spans[i].end ? i : n;
}

}  // namespace

void ProjectionStats::add(const ProjectionStats& o) {
  positions += o.positions;
  kd_positions += o.kd_positions;
  in_range += o.in_range;
  no_teacher_token += o.no_teacher_token;
  no_logprobs += o.no_logprobs;
  not_finite += o.not_finite;
  misaligned += o.misaligned;
  candidates += o.candidates;
  merged += o.merged;
  to_other += o.to_other;
  mid_token += o.mid_token;
  sum_other_mass += o.sum_other_mass;
  sum_topk_mass += o.sum_topk_mass;
}

KdRowCounts ProjectionStats::row_counts() const {
  KdRowCounts c;
  c.rows = positions;
  c.kd = kd_positions;
  c.outside_range = positions - in_range;
  c.no_teacher_boundary = no_teacher_token;
  c.no_logprobs = no_logprobs;
  c.not_finite = not_finite;
  c.misaligned = misaligned;
  return c;
}

size_t valid_utf8_prefix(const std::string& s) {
  size_t i = 0, good = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) break;
    bool ok = true;
    for (size_t k = 1; k < len; ++k) ok = ok && (static_cast<unsigned char>(s[i + k]) >> 6) == 2;
    if (!ok) break;
    i += len;
    good = i;
  }
  return good;
}

StudentProjector::StudentProjector(const Tokenizer& student, bool mid_token_rows, bool identity)
    : student_(student), mid_token_rows_(mid_token_rows), identity_(identity) {}

int32_t StudentProjector::identity_id(const TokenCandidate& c) {
  if (c.id < 0 || c.id >= student_.vocab_size())
    throw Error("same-tokenizer KD: the teacher's candidate '" + c.text + "' has id " + std::to_string(c.id) +
                    ", outside the student's vocabulary of " + std::to_string(student_.vocab_size()),
                "the teacher does not use the student's tokenizer: unset STUDENT_TOKENIZER=teacher and run prepare again");
  std::lock_guard<std::mutex> lock(mu_);
  auto it = identity_bytes_.find(c.id);
  if (it == identity_bytes_.end()) it = identity_bytes_.emplace(c.id, student_.continuation_bytes(c.id)).first;
  if (it->second != c.bytes)
    throw Error("same-tokenizer KD: teacher id " + std::to_string(c.id) + " spells '" + c.text +
                    "', the student's id " + std::to_string(c.id) + " spells '" + token_display_text(it->second) + "'",
                "the teacher does not use the student's tokenizer: unset STUDENT_TOKENIZER=teacher and run prepare again");
  return c.id;
}

int32_t StudentProjector::student_id(const TokenCandidate& c) {
  return identity_ ? identity_id(c) : first_subtoken(c.bytes);
}

void StudentProjector::add_candidate(int32_t id, double logprob, std::vector<std::pair<int32_t, double>>& merged,
                                     double& other, ProjectionStats& st) {
  ++st.candidates;
  if (id < 0) {
    other = log_add(other, logprob);
    ++st.to_other;
    return;
  }
  auto m = std::find_if(merged.begin(), merged.end(), [&](const auto& e) { return e.first == id; });
  if (m != merged.end()) {
    m->second = log_add(m->second, logprob);
    ++st.merged;
  } else {
    merged.emplace_back(id, logprob);
  }
}

bool StudentProjector::project_mid_token(const GeneratedToken& t, const std::string& prefix, ProjectedPosition& pos,
                                         ProjectionStats& st) {
  std::vector<std::pair<int32_t, double>> merged;
  double norm = -INFINITY, other = -INFINITY;
  for (const auto& c : t.top) {
    if (std::isnan(c.logprob) || is_missing_logprob(c.logprob) || !std::isfinite(c.logprob)) continue;
    if (c.bytes.size() <= prefix.size() || c.bytes.compare(0, prefix.size(), prefix) != 0) continue;
    norm = log_add(norm, c.logprob);
    add_candidate(first_subtoken(c.bytes.substr(prefix.size())), c.logprob, merged, other, st);
  }
  if (norm == -INFINITY) return false;
  std::stable_sort(merged.begin(), merged.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  double top_mass = 0;
  for (const auto& [id, lp] : merged) {
    pos.ids.push_back(id);
    pos.logprobs.push_back(static_cast<float>(std::min(0.0, lp - norm)));
    top_mass += std::exp(lp - norm);
  }
  const double other_mass = other == -INFINITY ? 0.0 : std::min(1.0, std::exp(other - norm));
  pos.other_logprob = static_cast<float>(std::log(std::max(other_mass, 1e-13)));
  pos.kd_valid = true;
  pos.reason = KdInvalid::None;
  ++st.kd_positions;
  ++st.mid_token;
  st.sum_other_mass += other_mass;
  st.sum_topk_mass += top_mass;
  return true;
}

int32_t StudentProjector::compute_first_subtoken(const std::string& bytes) const {
  if (bytes.empty()) return -1;
  const size_t valid = valid_utf8_prefix(bytes);
  if (valid == 0) return -1;  // starts inside a character: its first student token is unknowable
  const std::string probe = std::string(1, kNeutralContext) + bytes.substr(0, valid);
  const auto tokens = student_.encode(probe);
  for (const auto& t : tokens) {
    if (t.begin < 1) continue;  // the context (and the dummy-prefix mark before it)
    if (t.begin != 1) return -1;  // no student token starts where the candidate starts
    // A token that runs to the end of a truncated candidate might have been longer with the
    // missing bytes: only a token that ends strictly inside the valid part is certain.
    if (valid < bytes.size() && t.end >= probe.size()) return -1;
    return t.id;
  }
  return -1;
}

int32_t StudentProjector::first_subtoken(const std::string& candidate_bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(candidate_bytes);
    if (it != cache_.end()) return it->second;
  }
  const int32_t id = compute_first_subtoken(candidate_bytes);
  std::lock_guard<std::mutex> lock(mu_);
  cache_.emplace(candidate_bytes, id);
  return id;
}

std::vector<ProjectedPosition> StudentProjector::project(const std::string& text, const std::vector<TokenSpan>& student,
                                                         const std::vector<TokenSpan>& teacher_spans,
                                                         const std::vector<GeneratedToken>& teacher,
                                                         uint32_t kd_begin, ProjectionStats* stats) {
  ProjectionStats st;
  std::vector<ProjectedPosition> out(student.size());
  // Teacher tokens by start byte (the first one wins when a provider reports empty tokens).
  std::unordered_map<uint32_t, size_t> teacher_at;
  for (size_t i = 0; i < teacher_spans.size() && i < teacher.size(); ++i)
    if (teacher_spans[i].end > teacher_spans[i].begin) teacher_at.emplace(teacher_spans[i].begin, i);

  std::vector<std::pair<int32_t, double>> merged;
  for (size_t p = 0; p < student.size(); ++p) {
    ProjectedPosition& pos = out[p];
    pos.token_id = student[p].id;
    ++st.positions;
    if (student[p].begin < kd_begin || student[p].end <= student[p].begin) continue;  // OutsideRange
    ++st.in_range;
    auto it = teacher_at.find(student[p].begin);
    if (it == teacher_at.end()) {
      if (mid_token_rows_) {
        const size_t i = covering_token(teacher_spans, teacher.size(), student[p].begin);
        if (i < teacher.size()) {
          const uint32_t b = teacher_spans[i].begin;
          if (project_mid_token(teacher[i], text.substr(b, student[p].begin - b), pos, st)) continue;
        }
      }
      pos.reason = KdInvalid::NoTeacherToken;
      ++st.no_teacher_token;
      continue;
    }
    const GeneratedToken& t = teacher[it->second];
    // Usable candidates: finite log-probs, not the "-9999" missing marker.
    bool any = false, bad = false;
    for (const auto& c : t.top) {
      if (std::isnan(c.logprob) || is_missing_logprob(c.logprob)) continue;
      if (!std::isfinite(c.logprob) || c.logprob > 1e-6) bad = true;
      any = true;
    }
    if (!any) {
      pos.reason = KdInvalid::NoLogprobs;
      ++st.no_logprobs;
      continue;
    }
    if (bad || (!std::isnan(t.log_other) && std::isinf(t.log_other) && t.log_other > 0)) {
      pos.reason = KdInvalid::NotFinite;
      ++st.not_finite;
      continue;
    }
    // Other starts from the teacher's own Other (or what its top-K leaves).
    std::vector<double> top_lp;
    for (const auto& c : t.top)
      if (!std::isnan(c.logprob) && !is_missing_logprob(c.logprob)) top_lp.push_back(c.logprob);
    double other = std::isnan(t.log_other) ? log_other_from_topk(top_lp) : t.log_other;
    merged.clear();
    for (const auto& c : t.top) {
      if (std::isnan(c.logprob) || is_missing_logprob(c.logprob)) continue;
      add_candidate(student_id(c), c.logprob, merged, other, st);
    }
    std::stable_sort(merged.begin(), merged.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    // Total mass never exceeds 1: rounding in provider values is absorbed by capping Other.
    double top_mass = 0;
    for (const auto& [id, lp] : merged) top_mass += std::exp(lp);
    double other_mass = std::exp(other);
    if (top_mass + other_mass > 1.0) other_mass = std::max(0.0, 1.0 - top_mass);
    pos.kd_valid = true;
    pos.reason = KdInvalid::None;
    for (const auto& [id, lp] : merged) {
      pos.ids.push_back(id);
      pos.logprobs.push_back(static_cast<float>(std::min(0.0, lp)));
    }
    // Floor at e^-30 so the stored value stays finite (its mass is far below float resolution of 1).
    pos.other_logprob = static_cast<float>(std::log(std::max(other_mass, 1e-13)));
    ++st.kd_positions;
    st.sum_other_mass += other_mass;
    st.sum_topk_mass += top_mass;
  }
  if (stats) stats->add(st);
  return out;
}

std::vector<ProjectedPosition> StudentProjector::unaligned(const std::vector<TokenSpan>& student, uint32_t kd_begin,
                                                           ProjectionStats* stats) const {
  ProjectionStats st;
  std::vector<ProjectedPosition> out(student.size());
  for (size_t p = 0; p < student.size(); ++p) {
    out[p].token_id = student[p].id;
    ++st.positions;
    if (student[p].begin < kd_begin || student[p].end <= student[p].begin) continue;  // OutsideRange
    ++st.in_range;
    out[p].reason = KdInvalid::Misaligned;
    ++st.misaligned;
  }
  if (stats) stats->add(st);
  return out;
}

}  // namespace bkd

#pragma once
// KD row accounting: the one definition of why a KD shard row carries no teacher distribution, shared
// by `collect` (report, manifest), the shard's own metadata and `inspect` (docs/FORMAT.md, "Row
// accounting"). Every row falls in exactly one class:
//   kd                   kd_valid = true: the teacher's projected top-K + Other;
//   outside_range        nothing is asked of the teacher there: the first position(s) of a scored
//                        sequence (no context predicts them) and the prompt of a generated one;
//   no_teacher_boundary  in range, but no teacher token starts at the byte where this student token
//                        starts, so no teacher distribution exists for it (a property of the two
//                        tokenizers, not a failure; it IS missing KD signal: CE only);
//   no_logprobs          the teacher's token starts here but it returned no usable log-probs;
//   not_finite           ... or returned non-finite / positive log-probs;
//   misaligned           the teacher's token bytes do not spell the sequence text, so no position of
//                        that sequence could be aligned.
// Invalid rows are the last three (teacher failures). Rates share one denominator, the in-range rows:
//   kd_fraction + no_teacher_boundary_rate + invalid_row_rate = 1.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/parquet/parquet_format.h"

namespace bkd {

struct KdRowCounts {
  int64_t rows = 0;
  int64_t kd = 0;
  int64_t outside_range = 0;
  int64_t no_teacher_boundary = 0;
  int64_t no_logprobs = 0;
  int64_t not_finite = 0;
  int64_t misaligned = 0;

  int64_t in_range() const { return rows - outside_range; }
  int64_t teacher_failures() const { return no_logprobs + not_finite + misaligned; }
  int64_t without_kd() const { return rows - kd; }
  double invalid_row_rate() const { return ratio(teacher_failures(), in_range()); }
  double no_teacher_boundary_rate() const { return ratio(no_teacher_boundary, in_range()); }
  double kd_fraction() const { return ratio(kd, in_range()); }
  void add(const KdRowCounts& o);
  // Empty when the classes do not add up to `rows`; otherwise what is inconsistent.
  std::string inconsistency() const;

  nlohmann::json to_json() const;
  static KdRowCounts from_json(const nlohmann::json& j);
  // Parquet key-value metadata ("bkd.rows", "bkd.rows_kd", "bkd.rows_outside_range", ...).
  std::vector<parquet::KeyValue> to_key_values() const;
  // nullopt when the shard does not record the accounting (older shards, other writers); throws
  // bkd::Error naming `where` when it records it incompletely or inconsistently.
  static std::optional<KdRowCounts> from_key_values(const std::vector<parquet::KeyValue>& kv, const std::string& where);

 private:
  static double ratio(int64_t a, int64_t b) { return b > 0 ? double(a) / double(b) : 0.0; }
};

}  // namespace bkd

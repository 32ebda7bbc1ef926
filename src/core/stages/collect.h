#pragma once
// The `collect` stage (seed M2): KD traces from the teacher, projected onto the student tokenizer,
// written as Parquet shards with a manifest.
//   score mode:    the teacher scores chunks of the training split (local teacher, vLLM prompt_logprobs);
//   generate mode: the teacher continues prompts cut from the training split, top-K per generated token.
// Sequences are planned up front in a deterministic order (seq_id), partitioned over workers
// (`--worker i/n` takes seq_id % n == i), and written shard by shard; a shard enters the manifest only
// once it is complete on disk, so a run killed at any point resumes with no duplicated and no missing
// sequence.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/data/layout.h"
#include "core/kd/projection.h"

namespace bkd {
class Settings;
class Provider;

struct CollectOptions {
  int worker = 0, workers = 1;
  bool merge = false;      // combine worker manifests into kd_manifest.json and stop
  bool restart = false;    // ignore what earlier runs finished
  Provider* provider = nullptr;  // the teacher; null: built from settings
  // What to collect and where (eval collects held-out rows from the test split this way).
  Split split = Split::Train;
  std::string out_dir;            // empty: DATA_DIR
  int64_t target_positions = -1;  // < 0: KD_TARGET_TOKENS
  std::string report_name = "collect";  // REPORTS_DIR/<report_name>.json
};

// One planned sequence: a span of a training document.
struct KdSequence {
  int64_t seq_id;
  size_t doc;            // index into the training split
  uint32_t begin, end;   // byte span of the sequence text in the document
  uint32_t prompt_end;   // generate mode: end of the prompt part (== begin in score mode)
};

// Deterministic plan: documents in split order, chunks of SEQ_LEN student tokens, until
// KD_TARGET_TOKENS student positions are covered.
std::vector<KdSequence> plan_sequences(const std::vector<std::string>& docs, const SpmTokenizer& student,
                                       int64_t seq_len, int64_t target_positions, int64_t prompt_tokens,
                                       bool generate_mode);

std::string kd_manifest_path(const Settings& s, int worker, int workers);
std::string kd_shard_path(const Settings& s, int worker, int workers, int index);

// Runs (or resumes) collection; returns the collect report (also REPORTS_DIR/collect.json).
nlohmann::json run_collect(const Settings& s, const CollectOptions& opts);

nlohmann::json projection_stats_json(const ProjectionStats& st);

}  // namespace bkd

#pragma once
// The `collect` stage (seed M2): KD traces from the teacher, projected onto the student tokenizer,
// written as Parquet shards named by a manifest (core/kd/kd_manifest.h).
//   score mode:    the teacher scores chunks of the training split (local teacher, vLLM prompt_logprobs);
//   generate mode: the teacher continues prompts cut from the training split, top-K per generated token.
// Sequences are planned up front in a deterministic order (seq_id), partitioned over workers
// (`--worker i/n` takes seq_id % n == i), and written shard by shard; a shard enters the manifest only
// once it is complete on disk, so a run killed at any point resumes with no duplicated and no missing
// sequence.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/data/corpus.h"
#include "core/kd/kd_manifest.h"
#include "core/kd/kd_shard.h"
#include "core/kd/projection.h"

namespace bkd {
class Settings;
class Provider;

// The settings collect reads, read once.
struct CollectSettings {
  bool generate = false;  // KD_MODE=generate
  int top_k = 0;          // TOP_K (what is asked for; the teacher's limit may lower it)
  int64_t seq_len = 0, kd_target_tokens = 0, prompt_tokens = 0, shard_rows = 0;
  int max_new_tokens = 0;
  double temperature = 0;
  uint64_t seed = 0;
  uint64_t sample_seed = 0;  // SAMPLE_SEED: the document order plans are drawn in (in_sample_order)
  std::string teacher_provider, teacher_model;
  bool mid_token = false;  // KD_MID_TOKEN: rows inside a teacher token get its conditioned distribution
  bool identity = false;   // STUDENT_TOKENIZER=teacher: candidates keep their ids (checked), no projection
  int samples = 0;         // KD_SAMPLES: > 0 stores that many draws per position instead of the top-K
  KdWriterOptions writer;
  static CollectSettings from(const Settings& s);
  // The KD identity's projection: "" (first subtoken), "identity", "mid-token" or "identity+mid-token".
  std::string projection_name() const;
};

struct CollectOptions {
  int worker = 0, workers = 1;
  bool merge = false;      // combine worker manifests into kd_manifest.json and stop
  bool restart = false;    // ignore what earlier runs finished
  Provider* provider = nullptr;  // the teacher; null: built from settings
  // What to collect and where (eval collects held-out rows from the test split this way).
  Split split = Split::Train;
  bool eval_traces = false;       // false: RunLayout::kd_traces(); true: RunLayout::eval_kd_traces()
  int64_t target_positions = -1;  // < 0: KD_TARGET_TOKENS
  std::string report_name = "collect";  // RunLayout::collect_report(report_name, ...)
};

// One planned sequence: a span of a training document.
struct KdSequence {
  int64_t seq_id;
  size_t doc;            // index into the training split
  uint32_t begin, end;   // byte span of the sequence text in the document
  uint32_t prompt_end;   // generate mode: end of the prompt part (== begin in score mode)
  // The document's first chunk. Its rows start with an end-of-text row (outside the KD range), as every
  // model sees a document start in training and eval: right after end-of-text (docs/TRAINING.md).
  bool doc_start = false;
};

// Deterministic plan: documents in the order given, chunks of SEQ_LEN student tokens, until
// KD_TARGET_TOKENS student positions are covered. Generate mode counts what each prompt asks the
// teacher for: min(SEQ_LEN - PROMPT_TOKENS, max_new_tokens) positions (max_new_tokens < 0: no cap).
std::vector<KdSequence> plan_sequences(const std::vector<std::string>& docs, const Tokenizer& student,
                                       int64_t seq_len, int64_t target_positions, int64_t prompt_tokens,
                                       bool generate_mode, int64_t max_new_tokens = -1);

// A collection's plan over a split: its documents (in sample order, corpus.h), the sequences and their
// hash, and the student
// tokenizer's hash. Collect writes its identity into the manifest; training recomputes it to check
// that the manifest was made for this run.
struct KdPlan {
  std::vector<Document> docs;
  std::vector<KdSequence> sequences;
  std::string hash;
  std::unique_ptr<Tokenizer> student;  // the tokenizer the plan was made with (collect projects onto it)
  std::string student_tokenizer_hash;
};
// `score_chunks`: plan score-mode chunks whatever KD_MODE says (eval's held-out chunks).
KdPlan plan_collection(const Settings& s, Split split, int64_t target_positions, bool score_chunks = false);

// The identity a training run expects of its KD manifest: this run's plan, teacher, mode and TOP_K.
KdIdentity expected_kd_identity(const Settings& s);

// Runs (or resumes) collection; returns the collect report (also written under REPORTS_DIR).
nlohmann::json run_collect(const Settings& s, const CollectOptions& opts);

nlohmann::json projection_stats_json(const ProjectionStats& st);

}  // namespace bkd

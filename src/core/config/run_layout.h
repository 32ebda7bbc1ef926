#pragma once
// Every file and folder a run reads or writes under DRIVE_ROOT, named in one place. The folders come
// from the settings (DRIVE_ROOT, DATA_DIR, REPORTS_DIR, CKPT_DIR, CACHE_DIR, LOG_DIR, TB_DIR); the
// names inside them are spelled here and nowhere else. Formats own the insides of their own files
// (a Parquet shard, a checkpoint's tensors), not where those files sit.
//
//   DATA_DIR/corpus/<split>.jsonl            prepare: normalized documents per split
//   DATA_DIR/tokenizer/student.model         prepare: the student SentencePiece model
//   DATA_DIR/tokens/<split>.<side>.tok       prepare: tokenized splits (student, teacher)
//   DATA_DIR/prepare_manifest.json           prepare: inputs and outputs (skip when unchanged)
//   KD_DIR/kd_[wIofN_]manifest.json          collect: the KD manifest (training's only KD input;
//                                            KD_DIR defaults to DATA_DIR)
//   KD_DIR/kd_[wIofN_]shard_NNN.parquet      collect: KD shards named by the manifest
//   DATA_DIR/eval_kd/...                     eval: held-out KD rows, same names
//   CKPT_DIR/<role>/step_NNNNNNNN/           train: checkpoints (state.json, model.pt, optim.pt)
//   CKPT_DIR/<role>/metrics.jsonl            train: one line per step
//   CKPT_DIR/<role>_health.json              train: the M3 health summary
//   CKPT_DIR/student.gguf                    export: the packed student
//   CACHE_DIR/http, CACHE_DIR/capabilities   providers: response cache, capability probes
//   LOG_DIR/bitnet-kde.log, TB_DIR/<role>    logs, TensorBoard event files
//   REPORTS_DIR/<stage>.json, report.html    one report per stage, the HTML page
//   REPORTS_DIR/experiment.json, .html       experiment: arms x seeds with intervals
//   CKPT_DIR/experiment/<arm>/seed_<n>/      experiment: each run's checkpoints and its eval.json
//   CKPT_DIR/experiment/teacher_full_head/   experiment: the teacher retrained with its full head
//   DATA_DIR/experiment_kd/<traces>/         experiment: KD traces of arms that change them (K, RS-KD, ...)
#include <string>
#include <vector>

#include "core/data/split.h"

namespace bkd {
class Settings;

enum class TokenSide { Student, Teacher };
const char* token_side_name(TokenSide side);  // "student" | "teacher"

// A folder of KD traces: a manifest and the shards it names (per collection worker or merged).
class KdTraceDir {
 public:
  explicit KdTraceDir(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }
  // kd_manifest.json (workers == 1 or the merged one), else kd_w<i>of<n>_manifest.json.
  std::string manifest(int worker = 0, int workers = 1) const;
  // kd_[w<i>of<n>_]shard_NNN.parquet
  std::string shard(int worker, int workers, int index) const;
  std::string shard_file_name(int worker, int workers, int index) const;
  // The worker count n of worker manifests (kd_w<i>of<n>_manifest.json) in the folder; 0 when none.
  int worker_manifest_count() const;
  // Whether a folder entry is a temp file of this worker's shards or manifest (left by a killed run).
  bool is_temp_of(const std::string& name, int worker, int workers) const;
  // A file a manifest names (its "file" field), resolved in this folder; refuses names with a
  // folder part, so a manifest cannot point outside its folder.
  std::string entry(const std::string& file_name) const;

 private:
  std::string dir_;
};

class RunLayout {
 public:
  explicit RunLayout(const Settings& s);

  // Folders, in creation order; ensure_folders creates the missing ones and returns them.
  std::vector<std::string> folders() const;
  std::vector<std::string> ensure_folders() const;
  const std::string& root() const { return root_; }
  const std::string& data() const { return data_; }
  const std::string& reports() const { return reports_; }
  const std::string& checkpoints() const { return ckpt_; }
  const std::string& cache() const { return cache_; }
  const std::string& logs() const { return logs_; }

  // prepare
  std::string corpus_split(Split split) const;
  // The student's SentencePiece model: STUDENT_TOKENIZER when it names one, else
  // DATA_DIR/tokenizer/student.model (prepare trains it). Not read with STUDENT_TOKENIZER=teacher;
  // stages load the student tokenizer through load_student_tokenizer (core/tokenizer/run_tokenizers.h).
  std::string student_tokenizer() const;
  std::string token_file(Split split, TokenSide side) const;
  std::string prepare_manifest() const;
  // Inputs outside DRIVE_ROOT that the layout also names: GPT-2's BPE files (GPT2_BPE_DIR).
  std::string gpt2_encoder_json() const;
  std::string gpt2_vocab_bpe() const;

  // collect
  KdTraceDir kd_traces() const;       // training's traces (KD_DIR)
  KdTraceDir eval_kd_traces() const;  // eval's held-out rows (DATA_DIR/eval_kd)

  // train, export
  std::string role_checkpoints(const std::string& role) const;  // CKPT_DIR/<role>
  std::string health(const std::string& role) const;            // CKPT_DIR/<role>_health.json
  std::string student_gguf() const;                             // CKPT_DIR/student.gguf
  std::string student_llama_cpp_gguf() const;                   // CKPT_DIR/student-llama.cpp.gguf
  std::string student_hf_dir() const;                           // CKPT_DIR/student-hf/
  std::string tensorboard(const std::string& role) const;       // TB_DIR/<role>
  // Given folders (tests and tools pass their own): the same names under `ckpt_dir`.
  static std::string role_checkpoints_in(const std::string& ckpt_dir, const std::string& role);
  static std::string health_in(const std::string& ckpt_dir, const std::string& role);
  static std::string metrics_in(const std::string& role_dir);              // <role_dir>/metrics.jsonl
  static std::string checkpoint_step_name(int64_t step);                   // step_NNNNNNNN
  static bool is_checkpoint_step_name(const std::string& name);            // a finished step folder name
  static bool is_checkpoint_temp_name(const std::string& name);            // one being written (step_N.tmp-PID)
  static std::string checkpoint_state(const std::string& step_dir);        // <step>/state.json
  static std::string checkpoint_model(const std::string& step_dir);      // <step>/model.pt
  static std::string checkpoint_optimizer(const std::string& step_dir);  // <step>/optim.pt

  // providers
  std::string http_cache() const;
  std::string capability_cache() const;
  std::string log_file() const;  // LOG_DIR/bitnet-kde.log

  // reports (REPORTS_DIR)
  std::string prepare_report() const;
  std::string teacher_baseline_report() const;
  std::string collect_report(const std::string& name, int worker = 0, int workers = 1) const;  // <name>[_wIofN].json
  std::string collect_merge_report(const std::string& name) const;                             // <name>_merge.json
  std::string eval_report() const;      // mini_evaluation_report.json
  std::string html_report() const;      // report.html
  std::string pipeline_report() const;  // pipeline.json
  std::string dryrun_report() const;    // dryrun_7b.json
  std::string experiment_report() const;  // experiment.json
  std::string experiment_html() const;    // experiment.html
  std::string experiment_run(const std::string& arm, int64_t seed) const;  // CKPT_DIR/experiment/<arm>/seed_<n>
  std::string experiment_teacher() const;                      // CKPT_DIR/experiment/teacher_full_head
  std::string experiment_traces(const std::string& name) const;  // DATA_DIR/experiment_kd/<name>

 private:
  std::string root_, data_, kd_, reports_, ckpt_, cache_, logs_, tb_, student_tokenizer_, gpt2_dir_;
};

}  // namespace bkd

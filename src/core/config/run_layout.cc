#include "core/config/run_layout.h"

#include "core/tokenizer/run_tokenizers.h"

#include <cstdio>

#include "core/config/settings.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd {
namespace {

std::string worker_tag(int worker, int workers) {
  return workers == 1 ? "" : "w" + std::to_string(worker) + "of" + std::to_string(workers) + "_";
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

const char* token_side_name(TokenSide side) { return side == TokenSide::Student ? "student" : "teacher"; }

// ---- KD trace folders ------------------------------------------------------------------------------

std::string KdTraceDir::manifest(int worker, int workers) const {
  return join_path(dir_, "kd_" + worker_tag(worker, workers) + "manifest.json");
}

std::string KdTraceDir::shard_file_name(int worker, int workers, int index) const {
  char name[64];
  std::snprintf(name, sizeof name, "kd_%sshard_%03d.parquet", worker_tag(worker, workers).c_str(), index);
  return name;
}

std::string KdTraceDir::shard(int worker, int workers, int index) const {
  return join_path(dir_, shard_file_name(worker, workers, index));
}

int KdTraceDir::worker_manifest_count() const {
  if (!dir_exists(dir_)) return 0;
  for (const auto& name : list_dir(dir_)) {
    int i = 0, n = 0;
    char tail[32] = {0};
    if (std::sscanf(name.c_str(), "kd_w%dof%d_%31s", &i, &n, tail) == 3 && std::string(tail) == "manifest.json" && n > 0)
      return n;
  }
  return 0;
}

bool KdTraceDir::is_temp_of(const std::string& name, int worker, int workers) const {
  const std::string shard_prefix = "kd_" + worker_tag(worker, workers) + "shard_";
  const std::string manifest_tmp = "kd_" + worker_tag(worker, workers) + "manifest.json.tmp";
  return (starts_with(name, shard_prefix) && name.find(".parquet.tmp") != std::string::npos) ||
         starts_with(name, manifest_tmp);
}

std::string KdTraceDir::entry(const std::string& file_name) const {
  if (file_name.empty() || file_name.find('/') != std::string::npos || file_name == "." || file_name == "..")
    throw Error("the KD manifest in " + dir_ + " names the file '" + file_name + "', which is not a file in that folder",
                "the manifest is damaged: run `bitnet-kde collect --restart`");
  return join_path(dir_, file_name);
}

// ---- the run ---------------------------------------------------------------------------------------

RunLayout::RunLayout(const Settings& s)
    : root_(s.str("DRIVE_ROOT")),
      data_(s.str("DATA_DIR")),
      kd_(s.str("KD_DIR")),
      reports_(s.str("REPORTS_DIR")),
      ckpt_(s.str("CKPT_DIR")),
      cache_(s.str("CACHE_DIR")),
      logs_(s.str("LOG_DIR")),
      tb_(s.str("TB_DIR")),
      student_tokenizer_(s.str("STUDENT_TOKENIZER")),
      gpt2_dir_(s.str("GPT2_BPE_DIR")) {}

std::vector<std::string> RunLayout::folders() const { return {root_, data_, reports_, ckpt_, cache_, logs_}; }

std::vector<std::string> RunLayout::ensure_folders() const {
  std::vector<std::string> created;
  for (const auto& dir : folders()) {
    if (dir_exists(dir)) continue;
    if (file_exists(dir))
      throw Error("'" + dir + "' exists but is a file, not a directory",
                  "move the file away or point the setting at another path");
    ensure_dir(dir);
    created.push_back(dir);
  }
  return created;
}

std::string RunLayout::corpus_split(Split split) const {
  return join_path(data_, std::string("corpus/") + split_name(split) + ".jsonl");
}

std::string RunLayout::student_tokenizer() const {
  return student_tokenizer_.empty() || student_tokenizer_ == kStudentTokenizerIsTeacher
             ? join_path(data_, "tokenizer/student.model")
             : student_tokenizer_;
}

std::string RunLayout::token_file(Split split, TokenSide side) const {
  return join_path(data_, std::string("tokens/") + split_name(split) + "." + token_side_name(side) + ".tok");
}

std::string RunLayout::prepare_manifest() const { return join_path(data_, "prepare_manifest.json"); }
std::string RunLayout::gpt2_encoder_json() const { return join_path(gpt2_dir_, "encoder.json"); }
std::string RunLayout::gpt2_vocab_bpe() const { return join_path(gpt2_dir_, "vocab.bpe"); }

KdTraceDir RunLayout::kd_traces() const { return KdTraceDir(kd_); }
KdTraceDir RunLayout::eval_kd_traces() const { return KdTraceDir(join_path(data_, "eval_kd")); }

std::string RunLayout::role_checkpoints(const std::string& role) const { return role_checkpoints_in(ckpt_, role); }
std::string RunLayout::health(const std::string& role) const { return health_in(ckpt_, role); }
std::string RunLayout::student_gguf() const { return join_path(ckpt_, "student.gguf"); }
std::string RunLayout::student_llama_cpp_gguf() const { return join_path(ckpt_, "student-llama.cpp.gguf"); }
std::string RunLayout::student_hf_dir() const { return join_path(ckpt_, "student-hf"); }
std::string RunLayout::tensorboard(const std::string& role) const { return join_path(tb_, role); }

std::string RunLayout::role_checkpoints_in(const std::string& ckpt_dir, const std::string& role) {
  return join_path(ckpt_dir, role);
}
std::string RunLayout::health_in(const std::string& ckpt_dir, const std::string& role) {
  return join_path(ckpt_dir, role + "_health.json");
}
std::string RunLayout::metrics_in(const std::string& role_dir) { return join_path(role_dir, "metrics.jsonl"); }

std::string RunLayout::checkpoint_step_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "step_%08lld", static_cast<long long>(step));
  return buf;
}
bool RunLayout::is_checkpoint_step_name(const std::string& name) {
  return starts_with(name, "step_") && name.find(".tmp") == std::string::npos;
}
bool RunLayout::is_checkpoint_temp_name(const std::string& name) {
  return starts_with(name, "step_") && name.find(".tmp-") != std::string::npos;
}
std::string RunLayout::checkpoint_state(const std::string& step_dir) { return join_path(step_dir, "state.json"); }
std::string RunLayout::checkpoint_model(const std::string& step_dir) { return join_path(step_dir, "model.pt"); }
std::string RunLayout::checkpoint_optimizer(const std::string& step_dir) { return join_path(step_dir, "optim.pt"); }

std::string RunLayout::http_cache() const { return join_path(cache_, "http"); }
std::string RunLayout::capability_cache() const { return join_path(cache_, "capabilities"); }
std::string RunLayout::log_file() const { return join_path(logs_, "bitnet-kde.log"); }

std::string RunLayout::prepare_report() const { return join_path(reports_, "prepare.json"); }
std::string RunLayout::teacher_baseline_report() const { return join_path(reports_, "teacher_baseline.json"); }
std::string RunLayout::collect_report(const std::string& name, int worker, int workers) const {
  return join_path(reports_, name + (workers > 1 ? "_w" + std::to_string(worker) + "of" + std::to_string(workers) : "") + ".json");
}
std::string RunLayout::collect_merge_report(const std::string& name) const { return join_path(reports_, name + "_merge.json"); }
std::string RunLayout::eval_report() const { return join_path(reports_, "mini_evaluation_report.json"); }
std::string RunLayout::html_report() const { return join_path(reports_, "report.html"); }
std::string RunLayout::pipeline_report() const { return join_path(reports_, "pipeline.json"); }
std::string RunLayout::experiment_report() const { return join_path(reports_, "experiment.json"); }
std::string RunLayout::experiment_html() const { return join_path(reports_, "experiment.html"); }
std::string RunLayout::experiment_teacher() const {
  return join_path(join_path(ckpt_, "experiment"), "teacher_full_head");
}
std::string RunLayout::experiment_traces(const std::string& name) const {
  return join_path(join_path(data_, "experiment_kd"), name);
}
std::string RunLayout::experiment_run(const std::string& arm, int64_t seed) const {
  return join_path(join_path(join_path(ckpt_, "experiment"), arm), "seed_" + std::to_string(seed));
}
std::string RunLayout::dryrun_report() const { return join_path(reports_, "dryrun_7b.json"); }

}  // namespace bkd

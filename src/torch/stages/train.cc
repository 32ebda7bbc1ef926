#include "torch/stages/train.h"

#include <cstdio>
#include <optional>

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/data/token_file.h"
#include "core/dist/launch_env.h"
#include "core/kd/kd_manifest.h"
#include "core/stages/collect.h"
#include "core/tokenizer/run_tokenizers.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/util/sysinfo.h"
#include "torch/model/checkpoint.h"
#include "torch/model/device.h"
#include "torch/model/model_api.h"
#include "torch/model/student_from_teacher.h"
#include "torch/model/vocab_map.h"
#include "torch/dist/dist_group.h"
#include "torch/dist/rank_slice_source.h"
#include "torch/train/mapped_batches.h"
#include "torch/train/format_tokens.h"
#include "torch/train/kd_shard_source.h"

namespace bkd {
namespace {

constexpr int32_t kGpt2Eos = 50256;

// The teacher's trimmed head: the ids of the train split seen often enough, the rest in one class.
VocabMap teacher_vocab_map(const Settings& s, const TokenFile& train_tokens, int32_t eos, TrainOptions& o) {
  VocabMap map;
  const int64_t min_count = s.i64("TEACHER_VOCAB_MIN_COUNT");
  if (min_count <= 0) return map;
  std::vector<int32_t> always;  // end-of-text joins documents without being counted in the file
  if (eos >= 0) always.push_back(eos);
  map = VocabMap::from_token_counts(train_tokens, min_count, always);
  o.model.vocab_size = map.model_vocab();
  o.extra_state["vocab_map"] = map.to_json();
  log_info("train teacher: output head of " + std::to_string(map.model_vocab()) + " classes: " +
           std::to_string(map.kept.size()) + " GPT-2 ids seen >= " + std::to_string(min_count) +
           " times in the train split, and one shared by the other " + std::to_string(map.rare_count()));
  return map;
}

// The student's end-of-text id and the structural tokens of the format loss.
int32_t student_tokens(const RunLayout& layout, const Settings& s, TrainOptions& o) {
  const std::string spm = layout.student_tokenizer();
  if (!student_tokenizer_is_teacher(s) && !file_exists(spm)) {
    log_warn("train student: no student tokenizer at " + spm + "; format loss disabled");
    return -1;
  }
  auto tok = load_student_tokenizer(s);
  o.structural_ids = structural_token_ids(*tok, s.str("FORMAT_TOKENS"));
  log_info("train student: " + std::to_string(o.structural_ids.size()) + " structural tokens for the format loss (" +
           s.str("FORMAT_TOKENS") + ")");
  return tok->eos_id();
}

// STUDENT_INIT: a student of the teacher's shape, drawn (teacher-shape) or started from the teacher's
// weights (teacher). Both need the teacher's tokenizer: the student's ids must be the teacher's.
void apply_student_init(const Settings& s, const TokenFile& student_tokens, TrainOptions& o) {
  const std::string init = s.str("STUDENT_INIT");
  if (init == "scratch") return;
  if (!student_tokenizer_is_teacher(s))
    throw UsageError("STUDENT_INIT=" + init + " gives the student the teacher's vocabulary, and the student tokenizer is not "
                         "the teacher's",
                     "set STUDENT_TOKENIZER=teacher and run `bitnet-kde prepare` again, or use STUDENT_INIT=scratch");
  // The token files must have been made with the teacher's tokenizer (a prepare before the switch was not).
  const std::string teacher_hash = load_teacher_tokenizer(s)->hash();
  if (student_tokens.tokenizer_hash() != teacher_hash)
    throw Error("STUDENT_INIT=" + init + ": the student's token files were made with tokenizer " +
                    student_tokens.tokenizer_hash().substr(0, 12) + ", not the teacher's (" + teacher_hash.substr(0, 12) + ")",
                "run `bitnet-kde prepare` again with STUDENT_TOKENIZER=teacher");
  o.model = teacher_shaped_student_config(s, o.seq_len);
  o.extra_state["init"] = init;
  if (init != "teacher") return;
  require_full_teacher_head(s);
  o.init_weights = [&s](TransformerImpl& student) {
    const LocalTeacherModel t = load_local_teacher(s);
    copy_teacher_weights(t.model, student);
    log_info("train student: started from the teacher " + t.model.checkpoint + " (SubLN inserted, BitLinear)");
  };
}

// A finished run with the same model, budget, start and KD input is not trained again.
bool already_finished(const TrainOptions& o, TrainStageResult& r) {
  auto ck = latest_checkpoint(o.role_dir());
  if (!ck) return false;
  nlohmann::json st = load_checkpoint_state(*ck);
  const nlohmann::json init = o.extra_state.is_object() ? o.extra_state.value("init", nlohmann::json()) : nlohmann::json();
  if (st.value("step", int64_t(0)) >= st.value("total_steps", int64_t(1)) && st["model_config"] == nlohmann::json(o.model) &&
      st.value("budget_tokens", int64_t(0)) == o.budget_tokens && st.value("init", nlohmann::json()) == init) {
    r.already_finished = true;
    r.checkpoint = *ck;
    r.seen_tokens = st.value("seen_tokens", int64_t(0));
    return true;
  }
  return false;
}

// Checkpoints of a student are tied to the KD traces they were trained on (kd_input in their state):
// finished or resumed, a run never continues on other traces without saying so.
void require_checkpoints_match(const TrainOptions& o, const nlohmann::json& kd_input) {
  auto ck = latest_checkpoint(o.role_dir());
  if (!ck) return;
  const nlohmann::json st = load_checkpoint_state(*ck);
  if (st.value("kd_input", nlohmann::json()) != kd_input)
    throw Error("the student checkpoints in " + o.role_dir() + " were trained on other KD traces than the current "
                    "manifest names (trained on: " + st.value("kd_input", nlohmann::json()).dump() + ")",
                "delete " + o.role_dir() + " to train on the current traces");
}

// KD rows for the student: only the shards the run's complete, matching manifest names.
std::unique_ptr<BatchSource> kd_input(const KdManifest& m, const TrainOptions& o, TrainStageResult& r) {
  KdReadStats read;
  auto source = kd_shard_source(m.shard_paths, o.seq_len, o.batch_size * o.world_size(), o.seed, &read);
  if (read.rows != m.rows)
    throw Error("the KD shards named by " + m.path + " hold " + std::to_string(read.rows) + " rows, the manifest says " +
                    std::to_string(m.rows),
                "a shard changed after collection: run `bitnet-kde collect --restart`");
  r.kd_manifest = m.path;
  r.kd_rows_read = read.rows;
  r.kd_shards_read = read.shards;
  log_info("train student: KD on " + std::to_string(read.rows) + " rows in " + std::to_string(read.shards) +
           " shard(s) named by " + m.path + " (KL + CE + format loss)");
  return source;
}

}  // namespace

TrainStageResult run_train_stage(const Settings& s, const TrainStageOptions& opts) {
  const std::string& role = opts.role;
  if (role != "student" && role != "student_ce" && role != "teacher")
    throw UsageError("unknown role '" + role + "'", "use --role student, student_ce or teacher");
  const RunLayout layout(s);
  const bool teacher = role == "teacher";
  if (teacher && !s.str("TEACHER_MODEL_DIR").empty())
    throw UsageError("TEACHER_MODEL_DIR is set: the teacher is the Hugging Face model in " + s.str("TEACHER_MODEL_DIR") +
                         ", and there is no teacher to train",
                     "unset TEACHER_MODEL_DIR to train the project's own teacher");
  const std::string tok_path = layout.token_file(Split::Train, teacher ? TokenSide::Teacher : TokenSide::Student);
  if (!file_exists(tok_path))
    throw Error("tokenized training split " + tok_path + " does not exist",
                "run `bitnet-kde prepare` (or `make prepare`) first");
  TokenFile train_tokens(tok_path);
  const int64_t vocab = train_tokens.vocab_size();
  TrainOptions o = train_options_from_settings(s, role, vocab);
  if (!teacher) apply_student_init(s, train_tokens, o);
  o.resume = opts.resume;
  if (opts.adjust) opts.adjust(o);

  TrainStageResult r;
  r.role_dir = o.role_dir();
  r.health_path = o.health_path();
  int32_t eos = -1;
  VocabMap vocab_map;
  if (teacher) {
    eos = vocab == kGpt2Eos + 1 ? kGpt2Eos : -1;
    vocab_map = teacher_vocab_map(s, train_tokens, eos, o);
  } else {
    eos = student_tokens(layout, s, o);
  }
  // The student's KD input is checked before anything else, finished runs included.
  std::optional<KdManifest> manifest;
  if (role == "student") {
    manifest = require_training_manifest(layout.kd_traces(), expected_kd_identity(s));
    // Draws estimate the untempered distribution: tempering their empirical frequencies as atoms is
    // not the tempered teacher (docs/TRAINING.md).
    if (manifest->identity.samples > 0 && o.loss.kd > 0 && o.loss.temperature != 1.0)
      throw UsageError("KD_TEMPERATURE=" + s.str("KD_TEMPERATURE") + " with sampled KD traces (KD_SAMPLES=" +
                           std::to_string(manifest->identity.samples) + "): draws estimate the teacher at temperature 1",
                       "set KD_TEMPERATURE=1, or collect top-K traces (KD_SAMPLES=0) for tempered KD");
    o.extra_state["kd_input"] = {{"identity", manifest->identity.to_json()}, {"rows", manifest->rows}};
    require_checkpoints_match(o, o.extra_state["kd_input"]);
  }
  if (already_finished(o, r)) return r;

  // torchrun's contract (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): data parallel over c10d.
  const LaunchEnv env = launch_env_from_environment();
  std::unique_ptr<DistGroup> dist;
  if (env.distributed()) {
    const bool cuda = wants_cuda(o.device);
    if (cuda) o.cuda_index = env.local_rank;
    // THREADS=0 (all cores) shares the machine's cores between the ranks that run on it.
    if (o.threads == 0) o.threads = std::max(1, cpu_cores() / env.local_world_size);
    dist = DistGroup::connect(env, std::chrono::seconds(s.i64("DIST_TIMEOUT_S")), cuda);
    o.dist = dist.get();
  }
  // Every rank reads the same global order; RankSliceSource keeps its part of each global batch.
  std::unique_ptr<BatchSource> data;
  if (manifest) data = kd_input(*manifest, o, r);
  else data = TokenWindowSource::from_token_file(tok_path, o.seq_len, o.batch_size * o.world_size(), eos, o.seed);
  if (dist) data = std::make_unique<RankSliceSource>(std::move(data), dist->rank(), dist->world_size(), o.batch_size);
  data = map_batches(std::move(data), vocab_map);
  r.train = train(o, *data);
  return r;
}

}  // namespace bkd

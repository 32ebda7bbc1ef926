// `train [--role student|teacher] [--resume]`: pretrain the offline teacher (CE on GPT-2 tokens) or
// train the BitNet student (KD shards when present, else CE only on student tokens).
#include <cstdio>
#include <filesystem>

#include "cli/cli.h"
#include "core/data/layout.h"
#include "core/data/token_file.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "torch/format_tokens.h"
#include "torch/checkpoint.h"
#include "torch/kd_shard_source.h"
#include "torch/trainer.h"
#include "torch/vocab_map.h"

namespace bkd::cli {
namespace {

constexpr int32_t kGpt2Eos = 50256;

std::vector<std::string> kd_shards(const Settings& s) {
  std::vector<std::string> out;
  const std::string dir = s.str("DATA_DIR");
  if (!dir_exists(dir)) return out;
  for (const auto& name : list_dir(dir))
    if (name.rfind("kd_shard_", 0) == 0 && name.size() > 8 && name.substr(name.size() - 8) == ".parquet")
      out.push_back(join_path(dir, name));
  return out;
}

int run_train(const Settings& s, const std::string& role, bool resume) {
  if (role != "student" && role != "student_ce" && role != "teacher")
    throw UsageError("unknown --role '" + role + "'", "use --role student, student_ce or teacher");
  const bool teacher = role == "teacher";
  const std::string tok_path = token_file_path(s, Split::Train, teacher ? "teacher" : "student");
  if (!file_exists(tok_path))
    throw Error("tokenized training split " + tok_path + " does not exist",
                "run `bitnet-kde prepare` (or `make prepare`) first");
  TokenFile probe(tok_path);
  const int64_t vocab = probe.vocab_size();
  TrainOptions o = train_options_from_settings(s, role, vocab);
  o.resume = resume;

  int32_t eos = -1;
  VocabMap vocab_map;
  if (teacher) {
    eos = vocab == kGpt2Eos + 1 ? kGpt2Eos : -1;
    // A trimmed head: the ids of the train split seen often enough, the rest in one shared class.
    if (const int64_t min_count = s.i64("TEACHER_VOCAB_MIN_COUNT"); min_count > 0) {
      std::vector<int32_t> always;  // end-of-text joins documents without being counted in the file
      if (eos >= 0) always.push_back(eos);
      vocab_map = VocabMap::from_token_counts(probe, min_count, always);
      o.model.vocab_size = vocab_map.model_vocab();
      o.extra_state["vocab_map"] = vocab_map.to_json();
      log_info("train teacher: output head of " + std::to_string(vocab_map.model_vocab()) + " classes: " +
               std::to_string(vocab_map.kept.size()) + " GPT-2 ids seen >= " + std::to_string(min_count) +
               " times in the train split, and one shared by the other " + std::to_string(vocab_map.rare_count()));
    }
  } else {
    const std::string spm = student_tokenizer_path(s);
    if (file_exists(spm)) {
      auto tok = SpmTokenizer::load(spm);
      eos = tok->eos_id();
      o.structural_ids = structural_token_ids(*tok, s.str("FORMAT_TOKENS"));
      log_info("train student: " + std::to_string(o.structural_ids.size()) + " structural tokens for the format loss (" +
               s.str("FORMAT_TOKENS") + ")");
    } else {
      log_warn("train student: no student tokenizer at " + spm + "; format loss disabled");
    }
  }
  // Idempotent: a finished run with the same model is not trained again.
  if (auto ck = latest_checkpoint(o.role_dir())) {
    nlohmann::json st = load_checkpoint_state(*ck);
    if (st.value("step", int64_t(0)) >= st.value("total_steps", int64_t(1)) && st["model_config"] == nlohmann::json(o.model) &&
        st.value("budget_tokens", int64_t(0)) == o.budget_tokens) {
      std::printf("train %s: already finished (%s, %lld seen tokens); delete %s to train again\n", role.c_str(),
                  ck->c_str(), (long long)st.value("seen_tokens", int64_t(0)), o.role_dir().c_str());
      return 0;
    }
  }
  std::unique_ptr<BatchSource> data;
  if (role == "student") {
    auto shards = kd_shards(s);
    if (!shards.empty()) {
      log_info("train student: KD on " + std::to_string(shards.size()) + " shard(s) in " + s.str("DATA_DIR") +
               " (KL + CE + format loss)");
      data = kd_shard_source(shards, o.seq_len, o.batch_size, o.seed);
    } else {
      log_info("train student: no KD shards (kd_shard_*.parquet) in " + s.str("DATA_DIR") +
               ": training with CE only on " + tok_path);
    }
  }
  if (!data) data = TokenWindowSource::from_token_file(tok_path, o.seq_len, o.batch_size, eos, o.seed);
  data = map_batches(std::move(data), vocab_map);
  TrainResult r = train(o, *data);
  std::printf("train %s: %s after %lld steps, %lld seen tokens, %.0f tokens/s, NaN steps %lld%s\n", role.c_str(),
              r.finished ? "finished" : "stopped", (long long)r.steps, (long long)r.seen_tokens, r.tokens_per_s,
              (long long)r.nan_count,
              r.flipped ? (", A8->A4 flip at step " + std::to_string(r.flip_step)).c_str() : "");
  std::printf("checkpoints: %s\nhealth: %s\n", o.role_dir().c_str(), o.health_path().c_str());
  return 0;
}

void setup_train(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("train", "train the BitNet student (or --role teacher: pretrain the offline teacher)");
  static std::string role = "student";
  static bool resume = false;
  sub->add_option("--role", role, "student (BitNet, KD or CE), student_ce (the same BitNet with CE only: eval's ablation) or teacher (full precision, CE on GPT-2 tokens)")
      ->check(CLI::IsMember({"student", "student_ce", "teacher"}));
  sub->add_flag("--resume", resume, "continue from the latest checkpoint in CKPT_DIR/<role>");
  sub->callback([&cli] { cli.exit_code = run_train(cli.settings(), role, resume); });
}

RegisterVerb reg_train("train", 60, setup_train);

}  // namespace
}  // namespace bkd::cli

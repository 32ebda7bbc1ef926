// `export [--ckpt DIR] [--out FILE] [--tables f32|bf16|i8]`: packs a student training checkpoint into
// a GGUF model file for the engine, reloads it and checks engine vs LibTorch logits on held-out text
// (windows of the test split in student tokens; a seeded random token sample when the data is not
// prepared).
#include <cstdio>
#include <random>

#include "cli/cli.h"
#include "core/data/corpus.h"
#include "core/data/layout.h"
#include "core/engine/gguf_model.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "torch/checkpoint.h"
#include "torch/engine_export.h"

namespace bkd::cli {
namespace {

// Up to `max_windows` windows of `len` student tokens from the held-out test split, or none.
std::vector<std::vector<int32_t>> held_out_windows(const Settings& s, int64_t len, size_t max_windows) {
  std::vector<std::vector<int32_t>> out;
  const std::string test = split_text_path(s, Split::Test), spm = student_tokenizer_path(s);
  if (!file_exists(test) || !file_exists(spm)) return out;
  auto tok = SpmTokenizer::load(spm);
  for (const Document& d : read_split_jsonl(test)) {
    const std::vector<int32_t> ids = tok->encode_ids(d.text);
    for (size_t b = 0; b + static_cast<size_t>(len) <= ids.size() && out.size() < max_windows; b += static_cast<size_t>(len))
      out.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(b), ids.begin() + static_cast<std::ptrdiff_t>(b) + len);
    if (out.size() >= max_windows) break;
  }
  return out;
}

void setup_export(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("export", "pack a student checkpoint into a ternary GGUF model file (+ parity check)");
  static std::string ckpt, out, tables = "f32";
  sub->add_option("--ckpt", ckpt, "checkpoint folder (default: the latest in CKPT_DIR/student)");
  sub->add_option("--out", out, "model file (default: CKPT_DIR/student.gguf)");
  sub->add_option("--tables", tables, "embedding/head storage: f32, bf16 or i8")->check(CLI::IsMember({"f32", "bf16", "i8"}));
  sub->callback([&cli] {
    const Settings& s = cli.settings();
    std::string dir = ckpt;
    if (dir.empty()) {
      auto latest = latest_checkpoint(join_path(s.str("CKPT_DIR"), "student"));
      if (!latest)
        throw UsageError("no student checkpoint in " + join_path(s.str("CKPT_DIR"), "student"),
                         "run `bitnet-kde train` first or pass --ckpt");
      dir = *latest;
    }
    StudentCheckpoint sc = load_student_checkpoint(dir);
    const ModelConfig& cfg = sc.model->config();
    const TableFormat tf = tables == "bf16" ? TableFormat::BF16 : tables == "i8" ? TableFormat::I8 : TableFormat::F32;
    const PackedModel packed = pack_student(sc, tf);
    const std::string path = out.empty() ? join_path(s.str("CKPT_DIR"), "student.gguf") : out;
    save_packed_model(packed, path);
    std::printf("export: %s (%s, step %lld) -> %s: %.2f MB ternary + %.2f MB tables\n", dir.c_str(),
                to_string(sc.mode).c_str(), static_cast<long long>(sc.step), path.c_str(),
                static_cast<double>(packed.ternary_bytes()) / 1e6, static_cast<double>(packed.table_bytes()) / 1e6);
    const PackedModel loaded = load_packed_model(path);
    const int threads = static_cast<int>(s.i64("THREADS"));
    const int64_t len = std::min<int64_t>(128, cfg.max_seq_len);
    auto windows = held_out_windows(s, len, 32);
    std::string what;
    if (!windows.empty()) {
      what = std::to_string(windows.size()) + " held-out windows of " + std::to_string(len) + " tokens";
    } else {
      std::mt19937 rng(static_cast<uint32_t>(s.i64("SEED")));
      windows.emplace_back(static_cast<size_t>(std::min<int64_t>(64, cfg.max_seq_len)));
      for (auto& t : windows.back()) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(cfg.vocab_size));
      what = std::to_string(windows.back().size()) + " random tokens (no prepared test split)";
    }
    const ParityResult p = engine_parity_windows(sc.model, loaded, windows, threads);
    std::printf("parity (%s, %s): top-1 agreement %lld/%lld (%.2f%%; near ties %lld, others %lld), "
                "max |logit diff| %.3g (rounding bound %.3g, positions within it %.2f%%; max |logit| %.3g)\n",
                to_string(sc.mode).c_str(), what.c_str(), static_cast<long long>(p.argmax_agree),
                static_cast<long long>(p.positions), 100.0 * static_cast<double>(p.argmax_agree) / static_cast<double>(p.positions),
                static_cast<long long>(p.near_tie_disagree), static_cast<long long>(p.clear_disagree), p.max_abs_diff,
                p.max_tolerance, 100.0 * static_cast<double>(p.within_tolerance) / static_cast<double>(p.positions), p.max_abs_logit);
    if (tf == TableFormat::F32 && (p.argmax_agree * 1000 < p.positions * 995 || p.clear_disagree > 0)) cli.exit_code = 1;
  });
}

RegisterVerb reg_export("export", 65, setup_export);

}  // namespace
}  // namespace bkd::cli

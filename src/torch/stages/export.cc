#include "torch/stages/export.h"

#include <random>

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/data/corpus.h"
#include "core/engine/engine.h"
#include "core/engine/gguf_model.h"
#include "core/format/hf_bitnet.h"
#include "core/tokenizer/run_tokenizers.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "torch/model/checkpoint.h"

namespace bkd {
namespace {

// Up to `max_windows` windows of `len` student tokens from the held-out test split, or none.
std::vector<std::vector<int32_t>> held_out_windows(const Settings& s, int64_t len, size_t max_windows) {
  std::vector<std::vector<int32_t>> out;
  const RunLayout layout(s);
  const std::string test = layout.corpus_split(Split::Test);
  if (!file_exists(test) || (!student_tokenizer_is_teacher(s) && !file_exists(layout.student_tokenizer()))) return out;
  auto tok = load_student_tokenizer(s);
  for (const Document& d : read_split_jsonl(test)) {
    const std::vector<int32_t> ids = tok->encode_ids(d.text);
    for (size_t b = 0; b + static_cast<size_t>(len) <= ids.size() && out.size() < max_windows; b += static_cast<size_t>(len))
      out.emplace_back(ids.begin() + static_cast<std::ptrdiff_t>(b), ids.begin() + static_cast<std::ptrdiff_t>(b) + len);
    if (out.size() >= max_windows) break;
  }
  return out;
}

// The student's SentencePiece model, for the Hugging Face export (its tokenizer.model); a student with
// the teacher's byte-level BPE is refused by name.
std::unique_ptr<SpmTokenizer> sentencepiece_student(const Settings& s, const std::string& format) {
  std::unique_ptr<Tokenizer> tok = load_student_tokenizer(s);
  if (auto* spm = dynamic_cast<SpmTokenizer*>(tok.get())) {
    tok.release();
    return std::unique_ptr<SpmTokenizer>(spm);
  }
  throw UsageError("--format " + format + " writes the student's SentencePiece vocabulary, and this student uses the teacher's " +
                       tok->kind() + " tokenizer (STUDENT_TOKENIZER=teacher); that export is not written yet",
                   "export with --format bitnet-kde (the packed engine and `serve --engine` run it)");
}

// Whether two packed models give bit-identical engine logits (A8) on a seeded random window.
bool same_engine_logits(const PackedModel& a, const PackedModel& b, const ModelConfig& cfg, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> tokens(static_cast<size_t>(std::min<int64_t>(64, cfg.max_seq_len)));
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(cfg.vocab_size));
  auto logits = [&](const PackedModel& m) {
    EngineOptions o;
    o.threads = 1;
    Engine e(m, o);
    std::vector<float> out(tokens.size() * static_cast<size_t>(cfg.vocab_size));
    e.forward(tokens.data(), static_cast<int64_t>(tokens.size()), out.data(), true);
    return out;
  };
  return logits(a) == logits(b);
}

}  // namespace

ExportFormat export_format_from_string(const std::string& s) {
  if (s == "bitnet-kde") return ExportFormat::BitnetKde;
  if (s == "llama.cpp") return ExportFormat::LlamaCpp;
  if (s == "hf") return ExportFormat::Hf;
  throw UsageError("unknown export format '" + s + "'", "use --format bitnet-kde, llama.cpp or hf");
}

ExportResult run_export(const Settings& s, const ExportOptions& opts) {
  const RunLayout layout(s);
  ExportResult r;
  r.checkpoint = opts.ckpt;
  if (r.checkpoint.empty()) {
    auto latest = latest_checkpoint(layout.role_checkpoints("student"));
    if (!latest)
      throw UsageError("no student checkpoint in " + layout.role_checkpoints("student"),
                       "run `bitnet-kde train` first or pass --ckpt");
    r.checkpoint = *latest;
  }
  StudentCheckpoint sc = load_student_checkpoint(r.checkpoint);
  const ModelConfig& cfg = sc.model->config();
  r.format = opts.format;
  r.mode = sc.mode;
  r.step = sc.step;
  if (opts.format == ExportFormat::LlamaCpp) {
    const std::vector<std::string> problems = llama_cpp_export_problems(cfg, opts.llama_cpp);
    if (!problems.empty()) {  // before loading anything else: say every reason at once
      std::string why;
      for (const auto& p : problems) why += "\n  - " + p;
      throw UsageError("cannot export " + r.checkpoint + " for llama.cpp:" + why,
                       "export it with --format bitnet-kde (the packed engine runs it), or change the student config");
    }
    const GgufVocab vocab = gguf_vocab(*load_student_tokenizer(s));
    const PackedModel packed = pack_student(sc, opts.tables);
    r.path = opts.out.empty() ? layout.student_llama_cpp_gguf() : opts.out;
    r.llama_cpp = write_llama_cpp_gguf(packed, vocab, r.path, opts.llama_cpp);
    r.ternary_bytes = static_cast<int64_t>(packed.ternary_bytes());
    r.table_bytes = static_cast<int64_t>(packed.table_bytes());
    return r;
  }
  if (opts.format == ExportFormat::Hf) {
    if (opts.tables == TableFormat::I8)
      throw UsageError("--tables i8 has no Hugging Face form (transformers reads float embeddings)", "use --tables f32 or bf16");
    const auto spm = sentencepiece_student(s, "hf");
    const PackedModel packed = pack_student(sc, opts.tables);
    r.path = opts.out.empty() ? layout.student_hf_dir() : opts.out;
    write_hf_bitnet(packed, *spm, r.path);
    r.ternary_bytes = static_cast<int64_t>(packed.ternary_bytes());
    r.table_bytes = static_cast<int64_t>(packed.table_bytes());
    r.hf_roundtrip_identical = same_engine_logits(packed, read_hf_bitnet(r.path), cfg, static_cast<uint32_t>(s.i64("SEED")));
    return r;
  }
  const PackedModel packed = pack_student(sc, opts.tables);
  r.path = opts.out.empty() ? layout.student_gguf() : opts.out;
  save_packed_model(packed, r.path);
  r.ternary_bytes = static_cast<int64_t>(packed.ternary_bytes());
  r.table_bytes = static_cast<int64_t>(packed.table_bytes());

  const PackedModel loaded = load_packed_model(r.path);
  const int64_t len = std::min<int64_t>(128, cfg.max_seq_len);
  auto windows = held_out_windows(s, len, 32);
  if (!windows.empty()) {
    r.parity_inputs = std::to_string(windows.size()) + " held-out windows of " + std::to_string(len) + " tokens";
  } else {
    std::mt19937 rng(static_cast<uint32_t>(s.i64("SEED")));
    windows.emplace_back(static_cast<size_t>(std::min<int64_t>(64, cfg.max_seq_len)));
    for (auto& t : windows.back()) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(cfg.vocab_size));
    r.parity_inputs = std::to_string(windows.back().size()) + " random tokens (no prepared test split)";
  }
  r.parity = engine_parity_windows(sc.model, loaded, windows, static_cast<int>(s.i64("THREADS")));
  r.parity_ok = opts.tables != TableFormat::F32 || r.parity.codes_and_logits_agree(kMaxBoundaryFlipFraction);
  return r;
}

}  // namespace bkd

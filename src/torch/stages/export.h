#pragma once
// The `export` stage: a student training checkpoint as a model file.
//   bitnet-kde (default): the packed engine's GGUF; reloaded and checked against LibTorch's logits on
//              held-out text (windows of the test split in student tokens; a seeded random token
//              sample when the data is not prepared).
//   llama.cpp: a GGUF for llama.cpp's bitnet architecture (core/format/llama_cpp_gguf.h), with the
//              student tokenizer's vocabulary; checked against llama.cpp itself in the tests.
//   hf:        a Hugging Face BitNet folder (core/format/hf_bitnet.h); read back and run by the engine
//              next to the packed model it came from (the logits must be identical).
#include <string>

#include "core/engine/packed_model.h"
#include "core/format/llama_cpp_gguf.h"
#include "torch/model/engine_export.h"
#include "torch/model/engine_parity.h"

namespace bkd {
class Settings;

enum class ExportFormat { BitnetKde, LlamaCpp, Hf };
ExportFormat export_format_from_string(const std::string& s);  // "bitnet-kde" | "llama.cpp" | "hf"; else UsageError

struct ExportOptions {
  ExportFormat format = ExportFormat::BitnetKde;
  LlamaCppExportOptions llama_cpp;
  std::string ckpt;                       // checkpoint folder; empty: the latest student checkpoint
  std::string out;  // model file or folder; empty: RunLayout::student_gguf(), student_llama_cpp_gguf() or student_hf_dir()
  TableFormat tables = TableFormat::F32;  // embedding / head storage
};

struct ExportResult {
  ExportFormat format = ExportFormat::BitnetKde;
  LlamaCppExport llama_cpp;  // format llama.cpp: what was written
  bool hf_roundtrip_identical = false;  // format hf: the folder read back gives bit-identical engine logits
  std::string checkpoint, path, parity_inputs;  // parity_inputs: what the parity check ran on
  QuantMode mode = QuantMode::TernaryA8;
  int64_t step = 0;
  int64_t ternary_bytes = 0, table_bytes = 0;
  ParityResult parity;  // format bitnet-kde only
  // f32 tables must pass ParityResult::codes_and_logits_agree (identical weights, every logit within
  // its derived bound, activation codes equal but for one-step boundary flips); bf16 / i8 tables
  // round the embeddings, so their parity is reported, not required.
  bool parity_ok = true;
};

ExportResult run_export(const Settings& s, const ExportOptions& opts = {});

}  // namespace bkd

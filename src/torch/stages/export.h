#pragma once
// The `export` stage: packs a student training checkpoint into a GGUF model file for the packed engine,
// reloads it and checks engine vs LibTorch logits on held-out text (windows of the test split in
// student tokens; a seeded random token sample when the data is not prepared).
#include <string>

#include "core/engine/packed_model.h"
#include "torch/model/engine_export.h"

namespace bkd {
class Settings;

struct ExportOptions {
  std::string ckpt;                       // checkpoint folder; empty: the latest student checkpoint
  std::string out;                        // model file; empty: RunLayout::student_gguf()
  TableFormat tables = TableFormat::F32;  // embedding / head storage
};

struct ExportResult {
  std::string checkpoint, path, parity_inputs;  // parity_inputs: what the parity check ran on
  QuantMode mode = QuantMode::TernaryA8;
  int64_t step = 0;
  int64_t ternary_bytes = 0, table_bytes = 0;
  ParityResult parity;
  // f32 tables must agree on top-1 (>= 99.5%, every flip a near tie); bf16 / i8 tables round the
  // embeddings, so their parity is reported, not required.
  bool parity_ok = true;
};

ExportResult run_export(const Settings& s, const ExportOptions& opts = {});

}  // namespace bkd

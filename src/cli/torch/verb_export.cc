// `export [--format bitnet-kde|llama.cpp|hf] [--ckpt DIR] [--out PATH] [--tables f32|bf16|i8]
//         [--ternary-type tq2_0|tq1_0] [--no-q4-rows]`: the export stage (torch/stages/export.h) and its summary.
#include <cstdio>

#include "cli/cli.h"
#include "core/util/error.h"
#include "torch/stages/export.h"

namespace bkd::cli {
namespace {

void setup_export(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("export", "pack a student checkpoint into a ternary GGUF model file (+ parity check)");
  static std::string ckpt, out, tables = "f32", format = "bitnet-kde", ternary = "tq2_0";
  static bool no_q4_rows = false;
  sub->add_option("--format", format, "bitnet-kde (the packed engine's file), llama.cpp (GGUF for llama.cpp's bitnet architecture) or hf (a Hugging Face BitNet folder)")
      ->check(CLI::IsMember({"bitnet-kde", "llama.cpp", "hf"}));
  sub->add_option("--ternary-type", ternary, "llama.cpp: ternary block type, tq2_0 (2.06 bits/weight) or tq1_0 (1.69)")
      ->check(CLI::IsMember({"tq2_0", "tq1_0"}));
  sub->add_flag("--no-q4-rows", no_q4_rows,
                "llama.cpp: refuse rows whose length is not a multiple of 256 instead of storing them as exact Q4_0");
  sub->add_option("--ckpt", ckpt, "checkpoint folder (default: the latest in CKPT_DIR/student)");
  sub->add_option("--out", out, "model file or folder (default: CKPT_DIR/student.gguf, student-llama.cpp.gguf or student-hf/)");
  sub->add_option("--tables", tables, "embedding/head storage: f32, bf16 or i8")->check(CLI::IsMember({"f32", "bf16", "i8"}));
  sub->callback([&cli, sub] {
    if (format != "llama.cpp" && (sub->count("--ternary-type") > 0 || no_q4_rows))
      throw UsageError("--ternary-type and --no-q4-rows apply to --format llama.cpp only");
    ExportOptions o;
    o.ckpt = ckpt;
    o.out = out;
    o.tables = tables == "bf16" ? TableFormat::BF16 : tables == "i8" ? TableFormat::I8 : TableFormat::F32;
    o.format = export_format_from_string(format);
    o.llama_cpp.ternary = ternary == "tq1_0" ? GgmlType::TQ1_0 : GgmlType::TQ2_0;
    o.llama_cpp.allow_q4_0_rows = !no_q4_rows;
    const ExportResult r = run_export(cli.settings(), o);
    if (r.format == ExportFormat::Hf) {
      std::printf("export: %s (%s, step %lld) -> %s (Hugging Face BitNetForCausalLM, packed ternary): %.2f MB ternary + %.2f MB tables\n",
                  r.checkpoint.c_str(), to_string(r.mode).c_str(), static_cast<long long>(r.step), r.path.c_str(),
                  static_cast<double>(r.ternary_bytes) / 1e6, static_cast<double>(r.table_bytes) / 1e6);
      std::printf("read back: engine logits %s\n", r.hf_roundtrip_identical ? "bit-identical to the packed model's" : "DIFFER from the packed model's");
      if (!r.hf_roundtrip_identical) cli.exit_code = 1;
      return;
    }
    if (r.format == ExportFormat::LlamaCpp) {
      std::printf("export: %s (%s, step %lld) -> %s (llama.cpp, architecture bitnet): %.2f MB, %zu tensors\n",
                  r.checkpoint.c_str(), to_string(r.mode).c_str(), static_cast<long long>(r.step), r.path.c_str(),
                  static_cast<double>(r.llama_cpp.bytes) / 1e6, r.llama_cpp.tensors.size());
      if (!r.llama_cpp.q4_0_tensors.empty())
        std::printf("note: %zu ternary tensors have rows that are not a multiple of 256 and are stored as exact Q4_0 "
                    "(4.5 bits/weight), e.g. %s; a multiple of 256 (STUDENT_FFN, STUDENT_D_MODEL) keeps every tensor %s\n",
                    r.llama_cpp.q4_0_tensors.size(), r.llama_cpp.q4_0_tensors.front().c_str(), ternary == "tq1_0" ? "TQ1_0" : "TQ2_0");
      if (r.mode == QuantMode::TernaryA4)
        std::printf("note: the student was trained with 4-bit activations; llama.cpp runs it with 8-bit activations\n");
      return;
    }
    const ParityResult& p = r.parity;
    std::printf("export: %s (%s, step %lld) -> %s: %.2f MB ternary + %.2f MB tables\n", r.checkpoint.c_str(),
                to_string(r.mode).c_str(), static_cast<long long>(r.step), r.path.c_str(),
                static_cast<double>(r.ternary_bytes) / 1e6, static_cast<double>(r.table_bytes) / 1e6);
    const double positions = static_cast<double>(std::max<int64_t>(p.positions, 1));
    std::printf("parity (%s, %s): top-1 agreement %lld/%lld (%.2f%%), max |logit diff| %.3g (max |logit| %.3g)\n",
                to_string(r.mode).c_str(), r.parity_inputs.c_str(), static_cast<long long>(p.argmax_agree),
                static_cast<long long>(p.positions), 100.0 * static_cast<double>(p.argmax_agree) / positions, p.max_abs_diff,
                p.max_abs_logit);
    if (p.bounded) {
      std::printf("parity bound: positions within the derived rounding bound %.2f%% (largest bound %.3g, worst diff/bound "
                  "%.2f); disagreements near ties %lld, others %lld; weights differing %lld; activation codes differing "
                  "%lld of %lld (boundary flips %lld, largest step %lld; rows off the code grid %lld)\n",
                  100.0 * static_cast<double>(p.positions_within) / positions, p.max_bound, p.worst_diff_over_bound,
                  static_cast<long long>(p.near_tie_disagree), static_cast<long long>(p.clear_disagree),
                  static_cast<long long>(p.weight_mismatches), static_cast<long long>(p.codes_differ),
                  static_cast<long long>(p.codes_compared), static_cast<long long>(p.boundary_flips),
                  static_cast<long long>(p.max_flip_step),
                  static_cast<long long>(p.rows_off_grid));
    } else {
      std::printf("parity bound: none (%s tables round the embeddings; differences are reported, not checked)\n",
                  tables.c_str());
    }
    if (!r.parity_ok) cli.exit_code = 1;
  });
}

RegisterVerb reg_export("export", 65, setup_export);

}  // namespace
}  // namespace bkd::cli

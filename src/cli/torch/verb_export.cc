// `export [--ckpt DIR] [--out FILE] [--tables f32|bf16|i8]`: the export stage (torch/stages/export.h)
// and its summary.
#include <cstdio>

#include "cli/cli.h"
#include "torch/stages/export.h"

namespace bkd::cli {
namespace {

void setup_export(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("export", "pack a student checkpoint into a ternary GGUF model file (+ parity check)");
  static std::string ckpt, out, tables = "f32";
  sub->add_option("--ckpt", ckpt, "checkpoint folder (default: the latest in CKPT_DIR/student)");
  sub->add_option("--out", out, "model file (default: CKPT_DIR/student.gguf)");
  sub->add_option("--tables", tables, "embedding/head storage: f32, bf16 or i8")->check(CLI::IsMember({"f32", "bf16", "i8"}));
  sub->callback([&cli] {
    ExportOptions o;
    o.ckpt = ckpt;
    o.out = out;
    o.tables = tables == "bf16" ? TableFormat::BF16 : tables == "i8" ? TableFormat::I8 : TableFormat::F32;
    const ExportResult r = run_export(cli.settings(), o);
    const ParityResult& p = r.parity;
    std::printf("export: %s (%s, step %lld) -> %s: %.2f MB ternary + %.2f MB tables\n", r.checkpoint.c_str(),
                to_string(r.mode).c_str(), static_cast<long long>(r.step), r.path.c_str(),
                static_cast<double>(r.ternary_bytes) / 1e6, static_cast<double>(r.table_bytes) / 1e6);
    std::printf("parity (%s, %s): top-1 agreement %lld/%lld (%.2f%%; near ties %lld, others %lld), "
                "max |logit diff| %.3g (rounding bound %.3g, positions within it %.2f%%; max |logit| %.3g)\n",
                to_string(r.mode).c_str(), r.parity_inputs.c_str(), static_cast<long long>(p.argmax_agree),
                static_cast<long long>(p.positions), 100.0 * static_cast<double>(p.argmax_agree) / static_cast<double>(p.positions),
                static_cast<long long>(p.near_tie_disagree), static_cast<long long>(p.clear_disagree), p.max_abs_diff,
                p.max_tolerance, 100.0 * static_cast<double>(p.within_tolerance) / static_cast<double>(p.positions), p.max_abs_logit);
    if (!r.parity_ok) cli.exit_code = 1;
  });
}

RegisterVerb reg_export("export", 65, setup_export);

}  // namespace
}  // namespace bkd::cli

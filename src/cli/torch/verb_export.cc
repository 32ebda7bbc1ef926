// `export [--ckpt DIR] [--out FILE] [--tables f32|bf16|i8]`: packs a student training checkpoint into
// a GGUF model file for the engine, then checks engine vs LibTorch logits on a token sample.
#include <cstdio>
#include <random>

#include "cli/cli.h"
#include "core/engine/gguf_model.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "torch/checkpoint.h"
#include "torch/engine_export.h"

namespace bkd::cli {
namespace {

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
    const nlohmann::json st = load_checkpoint_state(dir);
    const ModelConfig cfg = st.at("model_config").get<ModelConfig>();
    const QuantMode mode = quant_mode_from_string(st.at("quant_mode").get<std::string>());
    if (!cfg.bitlinear || mode == QuantMode::FullPrecision)
      throw UsageError("checkpoint " + dir + " is a full-precision model", "export packs BitNet students only");
    Transformer model(cfg, mode);
    load_model_weights(dir, model, false);
    const TableFormat tf = tables == "bf16" ? TableFormat::BF16 : tables == "i8" ? TableFormat::I8 : TableFormat::F32;
    const PackedModel packed = pack_model(float_weights_of(model), tf);
    const std::string path = out.empty() ? join_path(s.str("CKPT_DIR"), "student.gguf") : out;
    save_packed_model(packed, path);
    std::printf("export: %s (%s, step %lld) -> %s: %.2f MB ternary + %.2f MB tables\n", dir.c_str(),
                to_string(mode).c_str(), static_cast<long long>(st.value("step", int64_t(0))), path.c_str(),
                static_cast<double>(packed.ternary_bytes()) / 1e6, static_cast<double>(packed.table_bytes()) / 1e6);
    // Parity on a seeded token sample (held-out text parity belongs to eval).
    const PackedModel loaded = load_packed_model(path);
    std::mt19937 rng(static_cast<uint32_t>(s.i64("SEED")));
    std::vector<int32_t> tokens(static_cast<size_t>(std::min<int64_t>(64, cfg.max_seq_len)));
    for (auto& t : tokens) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(cfg.vocab_size));
    const ParityResult p = engine_parity(model, loaded, tokens, static_cast<int>(s.i64("THREADS")));
    std::printf("parity (%s, %lld random tokens): argmax agreement %lld/%lld, max |logit diff| %.3g (max |logit| %.3g)\n",
                to_string(mode).c_str(), static_cast<long long>(p.positions), static_cast<long long>(p.argmax_agree),
                static_cast<long long>(p.positions), p.max_abs_diff, p.max_abs_logit);
    if (tf == TableFormat::F32 && p.argmax_agree * 1000 < p.positions * 995) cli.exit_code = 1;
  });
}

RegisterVerb reg_export("export", 65, setup_export);

}  // namespace
}  // namespace bkd::cli

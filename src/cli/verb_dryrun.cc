// `dryrun`: the 7B-shaped forward pass (seed M4) through the packed engine; writes its
// report (core/stages/dryrun_stage.h). Shape flags shrink it for smoke tests.
#include <cstdio>

#include "cli/cli.h"
#include "core/stages/dryrun_stage.h"

namespace bkd::cli {
namespace {

void setup_dryrun(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("dryrun", "7B-shaped forward pass: peak memory, decode vs bandwidth floor, A8->A4 check");
  static ModelConfig shape = DryrunStageOptions().shape;
  static std::string out;
  sub->add_option("--d-model", shape.d_model, "hidden size (default: LLaMA-7B's 4096)");
  sub->add_option("--layers", shape.n_layers, "blocks (default 32)");
  sub->add_option("--heads", shape.n_heads, "attention heads, also the KV heads (default 32)");
  sub->add_option("--ffn", shape.ffn_dim, "FFN inner size (default 11008)");
  sub->add_option("--vocab", shape.vocab_size, "vocabulary (default 32000)");
  sub->add_option("--out", out, "report path (default: REPORTS_DIR/dryrun_7b.json)");
  sub->callback([&cli] {
    DryrunStageOptions o;
    o.shape = shape;
    o.out = out;
    const nlohmann::json j = run_dryrun_stage(cli.settings(), o);
    const std::string path = j["_path"].get<std::string>();
    const auto& b = j["bandwidth"];
    std::printf("dryrun: d %lld, %lld layers, ffn %lld, vocab %lld; ternary %.3f GB + tables %.3f GB\n",
                static_cast<long long>(o.shape.d_model), static_cast<long long>(o.shape.n_layers),
                static_cast<long long>(o.shape.ffn_dim), static_cast<long long>(o.shape.vocab_size),
                j["weight_bytes"]["ternary_packed"].get<double>() / 1e9,
                (j["weight_bytes"]["embedding"].get<double>() + j["weight_bytes"]["lm_head"].get<double>()) / 1e9);
    for (const char* m : {"a8", "a4"})
      std::printf("  %s: prefill %.1f ms/token, decode %.1f ms/token (%s, %d threads)\n", m,
                  j[m]["prefill_s_per_token"].get<double>() * 1e3, j[m]["decode_s_per_token"].get<double>() * 1e3,
                  j[m]["kernels"].get<std::string>().c_str(), j[m]["threads"].get<int>());
    std::printf("  read bandwidth %.1f GB/s -> floor %.1f ms/token; decode/floor %.2f (target <= %.2f: %s)\n",
                b["read_gbps"].get<double>(), b["floor_s_per_token"].get<double>() * 1e3,
                b["decode_to_floor_ratio"].get<double>(), b["target_ratio"].get<double>(),
                b["target_met"].get<bool>() ? "met" : "MISSED");
    std::printf("  each step vs a probe just before it: median %.2f, best %.2f; CPU time per byte vs the probe: median %.2f\n",
                b["paired_step_to_floor_ratio_median"].get<double>(), b["paired_step_to_floor_ratio_best"].get<double>(),
                b["cpu_time_per_byte_ratio_median"].get<double>());
    std::printf("  best decode step / floor %.2f; 1-min load average %.1f before, %.1f after (machine has %d cores)\n",
                b["decode_best_step_to_floor_ratio"].get<double>(), b["load_average_1min_before"].get<double>(),
                b["load_average_1min_after"].get<double>(), j["_meta"]["machine"]["cores"].get<int>());
    std::printf("  peak RSS %.2f GB (target <= %.2f GB: %s)\n", j["memory"]["peak_rss_gb"].get<double>(),
                j["memory"]["target_gb"].get<double>(), j["memory"]["target_met"].get<bool>() ? "met" : "MISSED");
    std::printf("  A8 vs A4 final-hidden cosine: min %.4f, mean %.4f; checks %s\n",
                j["agreement"]["cosine_min"].get<double>(), j["agreement"]["cosine_mean"].get<double>(),
                j["success"].get<bool>() ? "passed" : "FAILED");
    std::printf("  report: %s\n", path.c_str());
    if (!j["success"].get<bool>()) cli.exit_code = 1;
  });
}

RegisterVerb reg_dryrun("dryrun", 80, setup_dryrun);

}  // namespace
}  // namespace bkd::cli

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
      std::printf("  %s: prefill %.1f ms/token (%s, %d threads, %zu-token prompt): %.1fx decode's tokens/s (target >= %.0f: %s)\n", m,
                  j[m]["prefill_s_per_token"].get<double>() * 1e3, j[m]["kernels"].get<std::string>().c_str(), j[m]["threads"].get<int>(),
                  j[m]["prefill_tokens"].get<size_t>(), j[m]["prefill_to_decode_speed"].get<double>(),
                  j[m]["prefill_to_decode_target"].get<double>(), j[m]["prefill_to_decode_target_met"].get<bool>() ? "met" : "MISSED");
    std::printf("  decode vs the bandwidth floor, each step paired with two probes of the same bytes just before it, a plain read "
                "and the GEMV's own loads, the faster setting the floor (%d pairs per mode):\n",
                b["pairs_per_mode"].get<int>());
    for (const auto& v : b["per_threads"])
      std::printf("    %d thread%s: decode %.1f / %.1f ms/token (a8 / a4, median), probe %.1f GB/s (plain %.1f, GEMV's loads %.1f) -> floor %.1f ms; "
                  "median step/floor %.2f / %.2f, CPU time per byte vs probe %.2f / %.2f (target <= %.2f: %s)\n",
                  v["threads"].get<int>(), v["threads"].get<int>() == 1 ? "" : "s",
                  v["a8"]["decode_s_per_token_median"].get<double>() * 1e3, v["a4"]["decode_s_per_token_median"].get<double>() * 1e3,
                  v["a8"]["probe_gbps_median"].get<double>(), v["a8"]["plain_read_gbps_median"].get<double>(),
                  v["a8"]["kernel_pattern_read_gbps_median"].get<double>(), v["a8"]["floor_s_per_token_median"].get<double>() * 1e3,
                  v["a8"]["step_to_floor_ratio_median"].get<double>(), v["a4"]["step_to_floor_ratio_median"].get<double>(),
                  v["a8"]["cpu_time_per_byte_ratio_median"].get<double>(), v["a4"]["cpu_time_per_byte_ratio_median"].get<double>(),
                  b["target_ratio"].get<double>(), v["target_met"].get<bool>() ? "met" : "MISSED");
    for (const auto& v : b["per_threads"])
      std::printf("    %d thread%s, where a step spends its time (a8 / a4, medians): projections %.2f / %.2f and head %.2f / %.2f "
                  "times the probe's regions over the same bytes; %.1f / %.1f ms between regions (norms, RoPE, KV cache, attention)\n",
                  v["threads"].get<int>(), v["threads"].get<int>() == 1 ? "" : "s",
                  v["a8"]["projections_vs_probe_median"].get<double>(), v["a4"]["projections_vs_probe_median"].get<double>(),
                  v["a8"]["head_vs_probe_median"].get<double>(), v["a4"]["head_vs_probe_median"].get<double>(),
                  v["a8"]["between_regions_ms_median"].get<double>(), v["a4"]["between_regions_ms_median"].get<double>());
    std::printf("  1-min load average %.1f before, %.1f after (machine has %d cores)\n", b["load_average_1min_before"].get<double>(),
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

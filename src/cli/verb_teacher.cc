// `teacher`: the greedy teacher baseline (seed M1). Draws prompts from the held-out split, runs the
// configured provider, and writes its report (core/stages/teacher_baseline.h).
#include <cmath>
#include <cstdio>

#include "cli/cli.h"
#include "core/stages/teacher_baseline.h"

namespace bkd::cli {
namespace {

double num_or_nan(const nlohmann::json& j, const char* a, const char* b) {
  return j.contains(a) && j[a].is_object() && j[a].contains(b) ? j[a][b].get<double>() : std::nan("");
}

void setup_teacher(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("teacher", "greedy teacher baseline: decode TPS, latency, usage, cost, determinism");
  static std::string out;
  sub->add_option("--out", out, "report path (default: REPORTS_DIR/teacher_baseline.json)");
  sub->callback([&cli] {
    TeacherBaselineOptions o;
    o.out = out;
    const nlohmann::json j = run_teacher_baseline(cli.settings(), o);
    const std::string path = j["_path"].get<std::string>();
    std::printf("teacher baseline: %s / %s, %d prompts (%d errors, %d from cache)\n", j.value("provider", "").c_str(),
                j.value("model", "").c_str(), j["requests"]["total"].get<int>(), j["requests"]["errors"].get<int>(),
                j["requests"]["from_cache"].get<int>());
    std::printf("  decode %.1f tokens/s (mean), latency p50 %.3f s p90 %.3f s p99 %.3f s, TTFT p50 %s\n",
                num_or_nan(j, "decode_tokens_per_s", "mean"), num_or_nan(j, "latency_s", "p50"),
                num_or_nan(j, "latency_s", "p90"), num_or_nan(j, "latency_s", "p99"),
                j["time_to_first_token_s"].is_null() ? "n/a"
                                                     : (std::to_string(j["time_to_first_token_s"]["p50"].get<double>()) + " s").c_str());
    std::printf("  usage %lld tokens, cost estimate %.4f; deterministic: %s (%d/%d identical)\n",
                static_cast<long long>(j["usage"]["total_tokens"].get<int64_t>()), j["cost_estimate"]["cost"].get<double>(),
                j["determinism"]["deterministic"].get<bool>() ? "yes" : "NO",
                j["determinism"]["identical"].get<int>(), j["determinism"]["prompts_checked"].get<int>());
    std::printf("  report: %s\n", path.c_str());
  });
}

RegisterVerb reg_teacher("teacher", 40, setup_teacher);

}  // namespace
}  // namespace bkd::cli

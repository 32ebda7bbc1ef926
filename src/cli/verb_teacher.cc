// `teacher`: the greedy teacher baseline (seed M1). Draws prompts from the held-out split, runs the
// configured provider, and writes REPORTS_DIR/teacher_baseline.json.
#include <cmath>
#include <cstdio>

#include "cli/cli.h"
#include "core/data/layout.h"
#include "core/teacher/baseline.h"
#include "core/teacher/provider_factory.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/util/report.h"

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
    const Settings& s = cli.settings();
    // The provider first: a missing key or an untrained local teacher fails before any work.
    std::unique_ptr<Provider> provider = make_provider(s);
    const auto prompts = draw_baseline_prompts(split_text_path(s, Split::Val), static_cast<int>(s.i64("BASELINE_PROMPTS")),
                                               static_cast<int>(s.i64("PROMPT_TOKENS")));
    BaselineOptions o;
    o.max_new_tokens = static_cast<int>(s.i64("MAX_NEW_TOKENS"));
    o.top_k = static_cast<int>(s.i64("TOP_K"));
    o.temperature = s.f64("TEACHER_TEMPERATURE");
    o.seed = static_cast<uint64_t>(s.i64("SEED"));
    o.in_flight = static_cast<int>(s.i64("MAX_IN_FLIGHT"));
    o.price_per_1k_tokens = s.f64("PRICE_PER_1K_TOKENS");
    log_info("teacher: " + provider->name() + " / " + provider->model() + ", " + std::to_string(prompts.size()) +
             " prompts, " + std::to_string(o.max_new_tokens) + " new tokens each");
    Report report("teacher_baseline", &s);
    report.body() = run_baseline(*provider, prompts, o);
    const std::string path = out.empty() ? join_path(s.str("REPORTS_DIR"), "teacher_baseline.json") : out;
    ensure_dir(parent_dir(path));
    const nlohmann::json j = report.write(path);
    std::printf("teacher baseline: %s / %s, %d prompts (%d errors, %d from cache)\n", provider->name().c_str(),
                provider->model().c_str(), j["requests"]["total"].get<int>(), j["requests"]["errors"].get<int>(),
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

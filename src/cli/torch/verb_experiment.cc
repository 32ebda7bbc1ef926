// `experiment`: the controlled comparison (torch/stages/experiment.h) and its summary table.
#include <cstdio>

#include "cli/cli.h"
#include "core/config/run_layout.h"
#include "torch/stages/experiment.h"

namespace bkd::cli {
namespace {

void print_summary(const Settings& s, const nlohmann::json& r) {
  std::printf("experiment: %lld seeds per arm, %lld tokens per run\n", (long long)r["seeds"].get<int64_t>(),
              (long long)r["budget_tokens"].get<int64_t>());
  std::printf("%-5s %-28s %-28s %-28s\n", "arm", "bits/byte [95% CI]", "top-1 [95% CI]", "KL [95% CI]");
  for (auto it = r["arms"].begin(); it != r["arms"].end(); ++it) {
    auto cell = [](const nlohmann::json& m) {
      char b[96];
      std::snprintf(b, sizeof b, "%.4f [%.4f, %.4f]", m["mean"].get<double>(), m["ci95"][0].get<double>(),
                    m["ci95"][1].get<double>());
      return std::string(b);
    };
    std::printf("%-5s %-28s %-28s %-28s\n", it.key().c_str(), cell(it.value()["bits_per_byte"]).c_str(),
                cell(it.value()["top1_agreement"]).c_str(), cell(it.value()["kl_teacher_student"]).c_str());
  }
  for (auto it = r["differences"].begin(); it != r["differences"].end(); ++it) {
    const auto& d = it.value()["bits_per_byte"];
    std::printf("%s: %+.4f bits/byte [%.4f, %.4f]%s\n", it.key().c_str(), d["mean"].get<double>(), d["ci95"][0].get<double>(),
                d["ci95"][1].get<double>(), d["excludes_zero"].get<bool>() ? "" : " (interval includes zero: no difference shown)");
  }
  if (r["teacher_bits_per_byte"].is_number())
    std::printf("teacher: %.4f bits/byte", r["teacher_bits_per_byte"].get<double>());
  if (r["teacher_full_head_bits_per_byte"].is_number())
    std::printf("; retrained with its full head: %.4f (the trimmed head costs %+.4f; one seed)",
                r["teacher_full_head_bits_per_byte"].get<double>(), r["trimmed_head_cost_bits_per_byte"].get<double>());
  if (r["teacher_bits_per_byte"].is_number()) std::printf("\n");
  for (auto it = r["kd_trace_storage"].begin(); it != r["kd_trace_storage"].end(); ++it)
    std::printf("KD traces %-8s %6.1f bytes/position, KD rows %.4f of the rows in range, mean Other mass %.3f\n",
                it.key().c_str(), it.value()["bytes_per_position"].get<double>(), it.value()["kd_fraction"].get<double>(),
                it.value()["mean_other_mass"].get<double>());
  const RunLayout layout(s);
  std::printf("report: %s\npage: %s\n", layout.experiment_report().c_str(), layout.experiment_html().c_str());
}

void setup_experiment(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand(
      "experiment", "controlled comparison: KD vs CE-only, A8 throughout, full precision, top-100, sampled KD and mid-token rows, EXPERIMENT_SEEDS seeds each, with intervals");
  sub->callback([&cli] { print_summary(cli.settings(), run_experiment(cli.settings())); });
}

RegisterVerb reg_experiment("experiment", 75, setup_experiment);

}  // namespace
}  // namespace bkd::cli

// `eval`: the eval stage (torch/stages/eval.h) and its summary table.
#include <cstdio>

#include "cli/cli.h"
#include "core/config/run_layout.h"
#include "torch/stages/eval.h"

namespace bkd::cli {
namespace {
using json = nlohmann::json;

void print_summary(const json& r) {
  auto num = [](const json& j, const char* fmt) {
    char buf[64];
    if (!j.is_number()) return std::string("-");
    std::snprintf(buf, sizeof buf, fmt, j.get<double>());
    return std::string(buf);
  };
  auto at = [](const json& j, std::initializer_list<const char*> path) {
    const json* p = &j;
    for (const char* k : path) {
      if (!p->is_object() || !p->contains(k)) return json(nullptr);
      p = &(*p)[k];
    }
    return *p;
  };
  std::printf("%-22s %12s %12s %12s %14s %12s\n", "model", "bits/byte", "top-1 agr", "KL", "decode tok/s", "memory MB");
  std::printf("%-22s %12s %12s %12s %14s %12s\n", "teacher", num(at(r, {"teacher", "quality", "bits_per_byte"}), "%.4f").c_str(),
              "-", "-", num(at(r, {"teacher", "decode_tokens_per_s"}), "%.1f").c_str(),
              num(json(at(r, {"teacher", "memory", "bytes"}).get<double>() / 1e6), "%.2f").c_str());
  std::printf("%-22s %12s %12s %12s %14s %12s\n", "student (KD)", num(at(r, {"student", "quality", "bits_per_byte"}), "%.4f").c_str(),
              num(at(r, {"student", "agreement", "top1_agreement"}), "%.3f").c_str(),
              num(at(r, {"student", "agreement", "kl_teacher_student"}), "%.3f").c_str(),
              num(at(r, {"student", "decode", "trained_mode", "decode_tokens_per_s"}), "%.1f").c_str(),
              num(json(at(r, {"student", "memory", "bytes"}).get<double>() / 1e6), "%.2f").c_str());
  if (r["ablation_ce_only"].contains("quality"))
    std::printf("%-22s %12s %12s %12s %14s %12s\n", "student (CE only)",
                num(at(r, {"ablation_ce_only", "quality", "bits_per_byte"}), "%.4f").c_str(),
                num(at(r, {"ablation_ce_only", "agreement", "top1_agreement"}), "%.3f").c_str(),
                num(at(r, {"ablation_ce_only", "agreement", "kl_teacher_student"}), "%.3f").c_str(), "-", "-");
  for (const char* k : {"measured", "placeholder"})
    if (r["qei"].contains(k))
      std::printf("QEI (%s quality): %.3f (>= 0.20: %s)   QEIspeed: %.3f (>= 0.10: %s)%s\n", k,
                  r["qei"][k]["qei"].get<double>(), r["qei"][k]["qei"].get<double>() >= 0.2 ? "yes" : "NO",
                  r["qei"][k]["qei_speed"].get<double>(), r["qei"][k]["qei_speed"].get<double>() >= 0.1 ? "yes" : "NO",
                  r["qei"][k].contains("qei_speed_bytes")
                      ? ("   in bytes/s: " + num(r["qei"][k]["qei_speed_bytes"], "%.3f")).c_str()
                      : "");
}

void setup_eval(CLI::App& app, Cli& cli) {
  auto* sub = app.add_subcommand("eval", "evaluate student vs teacher: bits/byte, agreement, TPS, memory, QEI");
  sub->callback([&cli] {
    const Settings& s = cli.settings();
    const json r = run_eval(s);
    print_summary(r);
    const RunLayout layout(s);
    std::printf("report: %s\nhtml:   %s\n", layout.eval_report().c_str(), layout.html_report().c_str());
  });
}

RegisterVerb reg_eval("eval", 70, setup_eval);

}  // namespace
}  // namespace bkd::cli

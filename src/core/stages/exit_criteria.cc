#include "core/stages/exit_criteria.h"

#include <cmath>
#include <cstdio>
#include <optional>

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/kd/kd_manifest.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd {
namespace {
using json = nlohmann::json;

constexpr double kMinShardRows = 500e3;
constexpr double kMaxInvalidRate = 0.02;
constexpr double kMinSeenTokens = 1e6;
constexpr double kMinFlipFraction = 0.9;
constexpr double kMaxPostClipNorm = 1.0;
constexpr int64_t kLossWindow = 200;
constexpr double kMaxRiseOverWindow = 0.05;  // the fitted loss may rise at most 5% of its mean across the window
constexpr double kMaxRelStd = 0.2;           // and scatter at most 20% of its mean
constexpr double kMinQei = 0.20, kMinQeiSpeed = 0.10;

std::string f(const char* fmt, double a, double b = 0, double c = 0, double d = 0) {
  char buf[256];
  std::snprintf(buf, sizeof buf, fmt, a, b, c, d);
  return buf;
}

json load(const std::string& path) {
  if (!file_exists(path)) return nullptr;
  try {
    return json::parse(read_file(path));
  } catch (const std::exception&) {
    return nullptr;
  }
}
}  // namespace

std::vector<Criterion> m3_criteria(const json& h, const std::string& path) {
  std::vector<Criterion> out;
  try {
    const double seen = h.at("seen_tokens").get<double>();
    out.push_back({"M3", ">= 1M seen tokens", f("%.0f seen tokens", seen), seen >= kMinSeenTokens});
    const int64_t nans = h.at("nan_count").get<int64_t>();
    out.push_back({"M3", "no NaN/inf steps", std::to_string(nans) + " NaN steps, " + std::to_string(h.at("skipped_steps").get<int64_t>()) +
                                        " skipped", nans == 0});
    const auto& fl = h.at("flip");
    const bool done = fl.at("done").get<bool>();
    const double frac = fl.at("fraction").get<double>();
    out.push_back({"M3", "A8->A4 flip at >= 90% of BUDGET_TOKENS",
                   done ? f("flipped at step %.0f, %.1f%% of the budget", double(fl.at("step").get<int64_t>()), 100 * frac)
                        : "never flipped",
                   done && frac >= kMinFlipFraction});
    const double g = h.at("max_post_clip_grad_norm_last_100").get<double>();
    out.push_back({"M3", "post-clip grad norm <= 1.0 (last 100 steps)", f("max %.4f", g), g <= kMaxPostClipNorm * (1 + 1e-6)});
    const auto& l = h.at("loss_last_200");
    const double mean = l.at("mean").get<double>(), sd = l.at("std").get<double>();
    const int64_t n = l.at("count").get<int64_t>();
    const double rise = l.at("slope_per_step").get<double>() * double(n);
    out.push_back({"M3", "loss stable over the last 200 steps",
                   f("%.0f steps: mean %.4f, std %.4f, fitted change %+.4f", double(n), mean, sd, rise),
                   n >= kLossWindow && std::isfinite(mean) && rise <= kMaxRiseOverWindow * mean && sd <= kMaxRelStd * mean});
  } catch (const json::exception& e) {
    throw Error(path + " lacks a field the check needs: " + e.what(), "it was written by an older version; retrain");
  }
  return out;
}

std::vector<Criterion> v0_criteria(const Settings& s) {
  std::vector<Criterion> out;
  const RunLayout layout(s);

  // M0: the folder tree (DRIVE_ROOT and the folders under it).
  int present = 0;
  std::string absent;
  const auto folders = layout.folders();
  for (const auto& dir : folders) {
    if (dir_exists(dir)) ++present;
    else absent += (absent.empty() ? "" : ", ") + dir;
  }
  out.push_back({"M0", "ensure_dirs creates the folder tree",
                 std::to_string(present) + "/" + std::to_string(folders.size()) + " folders" +
                     (absent.empty() ? "" : " (missing: " + absent + ")"),
                 present == static_cast<int>(folders.size())});

  // M1: the teacher baseline.
  const json tb = load(layout.teacher_baseline_report());
  if (tb.is_object()) {
    const int64_t ok = tb.contains("requests") ? tb["requests"].value("ok", int64_t(0)) : 0;
    const json& tps = tb.contains("decode_tokens_per_s") ? tb["decode_tokens_per_s"] : json();
    out.push_back({"M1", "teacher_baseline.json on >= 1 provider",
                   tb.value("provider", std::string("?")) + ": " + std::to_string(ok) + " prompts" +
                       (tps.is_object() ? f(", decode p50 %.1f tokens/s", tps.value("p50", 0.0)) : ""),
                   ok >= 1});
  } else {
    out.push_back({"M1", "teacher_baseline.json on >= 1 provider", "missing: run `bitnet-kde teacher`", false});
  }

  // M2: the first KD shard and its invalid-row rate.
  // Through the manifest, as training reads it: complete, and every shard it names on disk.
  std::optional<KdManifest> man;
  std::string man_error;
  try {
    if (!file_exists(layout.kd_traces().manifest())) throw Error("missing: run `bitnet-kde collect`");
    man = read_kd_manifest(layout.kd_traces());
    if (!man->complete) man_error = "the KD manifest is not complete: run `bitnet-kde collect`";
  } catch (const Error& e) {
    man_error = e.what();
  }
  if (man && man_error.empty() && !man->json["shards"].empty()) {
    const json& sh = man->json["shards"][0];
    const double rows = sh.value("rows", 0.0);
    out.push_back({"M2", "kd_shard_000.parquet with >= 500k token rows", f("%.0f rows", rows), rows >= kMinShardRows});
    const json& st = sh.contains("stats") ? sh["stats"] : json();
    if (st.is_object() && st.contains("invalid_row_rate")) {
      const double r = st["invalid_row_rate"].get<double>();
      out.push_back({"M2", "invalid-row rate < 2%", f("%.2f%%", 100 * r), r < kMaxInvalidRate});
    } else {
      out.push_back({"M2", "invalid-row rate < 2%", "the manifest has no invalid_row_rate", false});
    }
  } else {
    const std::string why = man_error.empty() ? std::string("the KD manifest names no shard") : man_error;
    out.push_back({"M2", "kd_shard_000.parquet with >= 500k token rows", why, false});
    out.push_back({"M2", "invalid-row rate < 2%", why, false});
  }

  // M3: the student's training health.
  const std::string hp = layout.health("student");
  const json health = load(hp);
  if (health.is_object()) {
    for (auto& c : m3_criteria(health, hp)) out.push_back(c);
  } else {
    for (const char* c : {">= 1M seen tokens", "no NaN/inf steps", "A8->A4 flip at >= 90% of BUDGET_TOKENS",
                          "post-clip grad norm <= 1.0 (last 100 steps)", "loss stable over the last 200 steps"})
      out.push_back({"M3", c, "missing: run `bitnet-kde train`", false});
  }

  // M4: evaluation, QEI and the 7B dry-run.
  const json ev = load(layout.eval_report());
  if (ev.is_object()) {
    double tps = 0;
    if (ev.contains("student") && ev["student"].contains("decode"))
      tps = ev["student"]["decode"]["trained_mode"].value("decode_tokens_per_s", 0.0);
    out.push_back({"M4", "mini_evaluation_report.json saved, TPS computed", f("student decode %.1f tokens/s", tps), tps > 0});
    for (const char* k : {"placeholder", "measured"}) {
      if (!ev.contains("qei") || !ev["qei"].contains(k)) continue;
      const json& q = ev["qei"][k];
      const double qei = q.value("qei", 0.0), qs = q.value("qei_speed", 0.0);
      out.push_back({"M4", std::string("QEI >= 0.20 and QEIspeed >= 0.10 (") + k + " quality)",
                     f("QEI %.3f, QEIspeed %.3f", qei, qs), qei >= kMinQei && qs >= kMinQeiSpeed});
    }
  } else {
    out.push_back({"M4", "mini_evaluation_report.json saved, TPS computed", "missing: run `bitnet-kde eval`", false});
    out.push_back({"M4", "QEI >= 0.20 and QEIspeed >= 0.10 (placeholder quality)", "missing: run `bitnet-kde eval`", false});
  }
  const json dry = load(layout.dryrun_report());
  if (dry.is_object()) {
    const bool ok = dry.value("success", false);
    const double gb = dry.contains("memory") ? dry["memory"].value("peak_rss_gb", 0.0) : 0.0;
    bool codes = false;
    if (dry.contains("checks"))
      codes = dry["checks"].value("a8_codes_in_range", false) && dry["checks"].value("a4_codes_in_range", false) &&
              dry["checks"].value("all_finite", false);
    out.push_back({"M4", "7B forward pass; peak memory logged; A8->A4 validated",
                   std::string(ok ? "success" : "failed") + f(", peak RSS %.2f GB, ", gb) +
                       (codes ? "A8 and A4 codes in range, all finite" : "A8/A4 check failed"),
                   ok && gb > 0 && codes});
  } else {
    out.push_back({"M4", "7B forward pass; peak memory logged; A8->A4 validated", "missing: run `bitnet-kde dryrun`", false});
  }
  return out;
}

json criteria_json(const std::vector<Criterion>& c) {
  json a = json::array();
  for (const auto& x : c) a.push_back({{"milestone", x.milestone}, {"criterion", x.criterion}, {"figure", x.figure}, {"pass", x.pass}});
  return a;
}

std::string criteria_table(const std::vector<Criterion>& c) {
  std::string out;
  char buf[512];
  for (const auto& x : c) {
    std::snprintf(buf, sizeof buf, "%-3s %-4s %-56s %s\n", x.milestone.c_str(), x.pass ? "PASS" : "FAIL", x.criterion.c_str(),
                  x.figure.c_str());
    out += buf;
  }
  return out;
}

}  // namespace bkd

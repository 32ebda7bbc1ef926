#include "core/stages/exit_criteria.h"

#include <cmath>
#include <cstdio>

#include "core/config/settings.h"
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
  const std::string reports = s.str("REPORTS_DIR"), data = s.str("DATA_DIR"), ckpt = s.str("CKPT_DIR");

  // M0: the folder tree.
  int present = 0;
  std::string absent;
  for (const char* k : {"DATA_DIR", "CKPT_DIR", "REPORTS_DIR", "LOG_DIR", "CACHE_DIR"}) {
    if (dir_exists(s.str(k))) ++present;
    else absent += std::string(absent.empty() ? "" : ", ") + k;
  }
  out.push_back({"M0", "ensure_dirs creates the folder tree",
                 std::to_string(present) + "/5 folders" + (absent.empty() ? "" : " (missing: " + absent + ")"), present == 5});

  // M1: the teacher baseline.
  const json tb = load(join_path(reports, "teacher_baseline.json"));
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
  const json man = load(join_path(data, "kd_manifest.json"));
  const bool shard0 = file_exists(join_path(data, "kd_shard_000.parquet"));
  if (man.is_object() && shard0 && man.contains("shards") && !man["shards"].empty()) {
    const json& sh = man["shards"][0];
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
    out.push_back({"M2", "kd_shard_000.parquet with >= 500k token rows", "missing: run `bitnet-kde collect`", false});
    out.push_back({"M2", "invalid-row rate < 2%", "missing: run `bitnet-kde collect`", false});
  }

  // M3: the student's training health.
  const std::string hp = join_path(ckpt, "student_health.json");
  const json health = load(hp);
  if (health.is_object()) {
    for (auto& c : m3_criteria(health, hp)) out.push_back(c);
  } else {
    for (const char* c : {">= 1M seen tokens", "no NaN/inf steps", "A8->A4 flip at >= 90% of BUDGET_TOKENS",
                          "post-clip grad norm <= 1.0 (last 100 steps)", "loss stable over the last 200 steps"})
      out.push_back({"M3", c, "missing: run `bitnet-kde train`", false});
  }

  // M4: evaluation, QEI and the 7B dry-run.
  const json ev = load(join_path(reports, "mini_evaluation_report.json"));
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
  const json dry = load(join_path(reports, "dryrun_7b.json"));
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

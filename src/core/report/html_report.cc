#include "core/report/html_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/util/fs.h"
#include "core/util/log.h"

namespace bkd {
namespace {
using json = nlohmann::json;

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

std::string fmt(double v, const char* f = "%.4g") {
  if (!std::isfinite(v)) return "-";
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

// At most `max_points` points: the mean of equal-width buckets of consecutive points.
std::vector<std::pair<double, double>> downsample(const std::vector<std::pair<double, double>>& p, size_t max_points) {
  if (p.size() <= max_points) return p;
  std::vector<std::pair<double, double>> out;
  const double per = double(p.size()) / double(max_points);
  for (size_t b = 0; b < max_points; ++b) {
    const size_t lo = size_t(double(b) * per), hi = std::min(p.size(), size_t(double(b + 1) * per));
    double sx = 0, sy = 0;
    for (size_t i = lo; i < hi; ++i) sx += p[i].first, sy += p[i].second;
    if (hi > lo) out.emplace_back(sx / double(hi - lo), sy / double(hi - lo));
  }
  return out;
}

struct Metrics {
  std::vector<json> rows;
  bool present = false;
};

Metrics read_metrics(const std::string& path) {
  Metrics m;
  std::ifstream in(path);
  if (!in) return m;
  m.present = true;
  size_t line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    try {
      m.rows.push_back(json::parse(line));
    } catch (const json::exception&) {
      log_warn("report.html: " + path + ":" + std::to_string(line_no) + " is not JSON; line skipped");
    }
  }
  return m;
}

ChartSeries series_of(const Metrics& m, const std::string& key, const std::string& name) {
  ChartSeries s{name, {}};
  for (const auto& r : m.rows)
    if (r.contains(key) && r[key].is_number() && r.contains("step")) s.points.emplace_back(r["step"].get<double>(), r[key].get<double>());
  return s;
}

std::vector<std::pair<double, std::string>> flip_marker(const Metrics& m) {
  for (size_t i = 1; i < m.rows.size(); ++i)
    if (m.rows[i].value("mode", "") != m.rows[i - 1].value("mode", ""))
      return {{m.rows[i]["step"].get<double>(), "A8→A4 flip (step " + std::to_string(m.rows[i]["step"].get<int64_t>()) + ")"}};
  return {};
}

json load_json(const std::string& path) {
  if (!file_exists(path)) return nullptr;
  try {
    return json::parse(read_file(path));
  } catch (const std::exception& e) {
    log_warn("report.html: cannot read " + path + ": " + e.what());
    return nullptr;
  }
}

const json& at(const json& j, std::initializer_list<const char*> path) {
  static const json null_json;
  const json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return null_json;
    p = &(*p)[k];
  }
  return *p;
}

std::string num(const json& j, const char* f = "%.4g") { return j.is_number() ? fmt(j.get<double>(), f) : "-"; }

std::string row(const std::vector<std::string>& cells, bool head = false) {
  std::string r = "<tr>";
  for (const auto& c : cells) r += (head ? "<th>" : "<td>") + c + (head ? "</th>" : "</td>");
  return r + "</tr>\n";
}

std::string missing(const std::string& what, const std::string& stage) {
  return "<p class=missing>" + html_escape(what) + " not found: run <code>" + html_escape(stage) + "</code>.</p>\n";
}

}  // namespace

std::string html_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&#39;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::vector<ChartSeries>& series,
                           const std::vector<std::pair<double, std::string>>& markers, bool log_y) {
  const double W = 640, H = 300, L = 60, R = 20, T = 30, B = 45;
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  auto ty = [&](double y) { return log_y ? std::log10(y) : y; };
  for (const auto& s : series)
    for (const auto& [x, y] : s.points) {
      if (!std::isfinite(x) || !std::isfinite(y) || (log_y && y <= 0)) continue;
      x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, ty(y)), y1 = std::max(y1, ty(y));
    }
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W << " "
    << H << "\" role=\"img\"><title>" << html_escape(title) << "</title>"
    << "<text x=\"" << W / 2 << "\" y=\"18\" text-anchor=\"middle\" font-weight=\"bold\">" << html_escape(title) << "</text>";
  if (!(x0 <= x1)) {
    o << "<text x=\"" << W / 2 << "\" y=\"" << H / 2 << "\" text-anchor=\"middle\">no data</text></svg>";
    return o.str();
  }
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (ty(y) - y0) / (y1 - y0) * (H - T - B); };
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\"" << H - T - B
    << "\" fill=\"none\" stroke=\"#999\"/>";
  for (int i = 0; i <= 4; ++i) {  // y ticks
    const double v = y0 + (y1 - y0) * i / 4.0, yy = H - B - (v - y0) / (y1 - y0) * (H - T - B);
    o << "<line x1=\"" << L - 4 << "\" x2=\"" << W - R << "\" y1=\"" << yy << "\" y2=\"" << yy
      << "\" stroke=\"#eee\"/><text x=\"" << L - 6 << "\" y=\"" << yy + 4 << "\" text-anchor=\"end\" font-size=\"11\">"
      << fmt(log_y ? std::pow(10.0, v) : v, "%.3g") << "</text>";
  }
  for (int i = 0; i <= 4; ++i) {  // x ticks
    const double v = x0 + (x1 - x0) * i / 4.0;
    o << "<text x=\"" << px(v) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\" font-size=\"11\">" << fmt(v, "%.6g")
      << "</text>";
  }
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 8 << "\" text-anchor=\"middle\" font-size=\"12\">"
    << html_escape(x_label) << "</text>";
  for (const auto& [x, label] : markers) {
    if (x < x0 || x > x1) continue;
    o << "<line x1=\"" << px(x) << "\" x2=\"" << px(x) << "\" y1=\"" << T << "\" y2=\"" << H - B
      << "\" stroke=\"#555\" stroke-dasharray=\"5,4\"/><text x=\"" << px(x) - 4 << "\" y=\"" << T + 14
      << "\" text-anchor=\"end\" font-size=\"11\">" << html_escape(label) << "</text>";
  }
  size_t ci = 0;
  double legend_y = T + 14;
  for (const auto& s : series) {
    const char* color = kColors[ci++ % (sizeof kColors / sizeof kColors[0])];
    std::string d;
    for (const auto& [x, y] : downsample(s.points, 600)) {
      if (!std::isfinite(x) || !std::isfinite(y) || (log_y && y <= 0)) continue;
      d += (d.empty() ? "M" : " L") + fmt(px(x), "%.1f") + "," + fmt(py(y), "%.1f");
    }
    if (!d.empty())
      o << "<path d=\"" << d << "\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\"/>";
    o << "<rect x=\"" << L + 10 << "\" y=\"" << legend_y - 9 << "\" width=\"10\" height=\"10\" fill=\"" << color
      << "\"/><text x=\"" << L + 24 << "\" y=\"" << legend_y << "\" font-size=\"11\">" << html_escape(s.name) << "</text>";
    legend_y += 14;
  }
  o << "</svg>";
  return o.str();
}

std::string write_html_report(const Settings& s) {
  const RunLayout layout(s);
  const json ev = load_json(layout.eval_report());
  const json pipe = load_json(layout.pipeline_report());
  const json dry = load_json(layout.dryrun_report());
  const Metrics student = read_metrics(RunLayout::metrics_in(layout.role_checkpoints("student")));
  const Metrics ce_only = read_metrics(RunLayout::metrics_in(layout.role_checkpoints("student_ce")));
  const Metrics teacher = read_metrics(RunLayout::metrics_in(layout.role_checkpoints("teacher")));

  std::ostringstream h;
  h << "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>bitnet-kde report</title><style>"
       "body{font-family:system-ui,sans-serif;max-width:1340px;margin:2em auto;padding:0 1em;color:#222}"
       "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}"
       "th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.pass{color:#1a7f37;font-weight:bold}"
       ".fail{color:#c62828;font-weight:bold}.missing{color:#888}svg{margin:6px;border:1px solid #eee}"
       "</style></head><body>\n<h1>bitnet-kde run report</h1>\n";
  h << "<p>Preset <code>" << html_escape(s.str("PRESET")) << "</code>";
  if (ev.is_object()) h << " · evaluated " << html_escape(at(ev, {"_meta", "ended_at"}).is_string() ? at(ev, {"_meta", "ended_at"}).get<std::string>() : "");
  h << "</p>\n";

  // Exit criteria (pipeline.json).
  h << "<h2>Exit criteria (seed v0, M0–M4)</h2>\n";
  if (pipe.is_object() && pipe.contains("criteria")) {
    h << "<table>" << row({"milestone", "criterion", "figure", "result"}, true);
    for (const auto& c : pipe["criteria"]) {
      const bool pass = c.value("pass", false);
      h << row({html_escape(c.value("milestone", "")), html_escape(c.value("criterion", "")), html_escape(c.value("figure", "")),
                std::string("<span class=") + (pass ? "pass>pass" : "fail>FAIL") + "</span>"});
    }
    h << "</table>\n";
  } else {
    h << missing("pipeline.json", "bitnet-kde pipeline");
  }

  // Teacher vs student.
  h << "<h2>Teacher vs student (held-out test split)</h2>\n";
  if (ev.is_object()) {
    h << "<table>" << row({"model", "bits / byte", "top-1 agreement", "KL(teacher‖student)", "decode tokens/s", "memory (MB)"}, true);
    h << row({"teacher (" + html_escape(at(ev, {"teacher", "provider"}).is_string() ? at(ev, {"teacher", "provider"}).get<std::string>() : "") + ")",
              num(at(ev, {"teacher", "quality", "bits_per_byte"})), "-", "-", num(at(ev, {"teacher", "decode_tokens_per_s"}), "%.1f"),
              at(ev, {"teacher", "memory", "bytes"}).is_number() ? fmt(at(ev, {"teacher", "memory", "bytes"}).get<double>() / 1e6, "%.2f") : "-"});
    h << row({"student, KD (" + html_escape(at(ev, {"student", "mode"}).is_string() ? at(ev, {"student", "mode"}).get<std::string>() : "") + ")",
              num(at(ev, {"student", "quality", "bits_per_byte"})), num(at(ev, {"student", "agreement", "top1_agreement"}), "%.3f"),
              num(at(ev, {"student", "agreement", "kl_teacher_student"}), "%.3f"),
              num(at(ev, {"student", "decode", "trained_mode", "decode_tokens_per_s"}), "%.1f"),
              at(ev, {"student", "memory", "bytes"}).is_number() ? fmt(at(ev, {"student", "memory", "bytes"}).get<double>() / 1e6, "%.2f") : "-"});
    if (at(ev, {"ablation_ce_only", "quality"}).is_object())
      h << row({"student, CE only (ablation)", num(at(ev, {"ablation_ce_only", "quality", "bits_per_byte"})),
                num(at(ev, {"ablation_ce_only", "agreement", "top1_agreement"}), "%.3f"),
                num(at(ev, {"ablation_ce_only", "agreement", "kl_teacher_student"}), "%.3f"), "-", "-"});
    h << "</table>\n";
    if (at(ev, {"ablation_ce_only", "kd_gain_bits_per_byte"}).is_number())
      h << "<p>What KD buys at the same token budget: " << num(at(ev, {"ablation_ce_only", "kd_gain_bits_per_byte"}))
        << " bits/byte lower than the CE-only student (positive = KD better).</p>\n";
    if (ev.contains("flip_cost"))
      h << "<p>A8→A4 flip: " << num(at(ev, {"flip_cost", "bits_per_byte_a4"})) << " bits/byte with 4-bit activations vs "
        << num(at(ev, {"flip_cost", "bits_per_byte_a8_same_weights"})) << " with 8-bit on the same weights (cost "
        << num(at(ev, {"flip_cost", "quality_cost_bits_per_byte"})) << " bits/byte); decode "
        << num(at(ev, {"flip_cost", "decode_tokens_per_s_a4"}), "%.1f") << " vs " << num(at(ev, {"flip_cost", "decode_tokens_per_s_a8"}), "%.1f")
        << " tokens/s.</p>\n";
    h << "<h2>QEI</h2>\n<table>" << row({"quality", "q_s/q_t", "mem_s/mem_t", "TPS_s/TPS_t", "QEI (≥ 0.20)", "QEIspeed (≥ 0.10)"}, true);
    for (const char* k : {"measured", "placeholder"}) {
      const json& q = at(ev, {"qei", k});
      if (!q.is_object()) continue;
      const bool ok1 = q.value("qei", 0.0) >= 0.2, ok2 = q.value("qei_speed", 0.0) >= 0.1;
      h << row({html_escape(q.value("quality", k)), num(q["quality_ratio"]), num(q["memory_ratio"]), num(q["tps_ratio"]),
                std::string("<span class=") + (ok1 ? "pass>" : "fail>") + num(q["qei"]) + "</span>",
                std::string("<span class=") + (ok2 ? "pass>" : "fail>") + num(q["qei_speed"]) + "</span>"});
    }
    h << "</table>\n";
  } else {
    h << missing("mini_evaluation_report.json", "bitnet-kde eval");
  }

  // Training curves.
  h << "<h2>Student training</h2>\n";
  if (student.present) {
    const auto flip = flip_marker(student);
    h << svg_line_chart("student loss terms", "optimizer step",
                        {series_of(student, "loss", "total"), series_of(student, "kd", "KL (KD)"), series_of(student, "ce", "CE"),
                         series_of(student, "format", "format")},
                        flip, true);
    h << svg_line_chart("gradient norm", "optimizer step",
                        {series_of(student, "grad_norm_pre", "before clipping"), series_of(student, "grad_norm_post", "after clipping")},
                        flip, true);
    if (ce_only.present)
      h << svg_line_chart("CE: KD student vs CE-only ablation", "optimizer step",
                          {series_of(student, "ce", "KD student CE"), series_of(ce_only, "ce", "CE-only student CE")}, flip, true);
  } else {
    h << missing("student metrics", "bitnet-kde train");
  }
  if (teacher.present)
    h << "<h2>Offline teacher pretraining</h2>\n"
      << svg_line_chart("teacher CE", "optimizer step", {series_of(teacher, "ce", "CE")}, {}, true);

  // 7B dry-run.
  h << "<h2>7B-shaped dry-run</h2>\n";
  if (dry.is_object()) {
    h << "<table>" << row({"success", "peak RSS (GB)", "A8/A4 codes in range", "all finite"}, true)
      << row({dry.value("success", false) ? "yes" : "no", num(at(dry, {"memory", "peak_rss_gb"}), "%.2f"),
              (at(dry, {"checks", "a8_codes_in_range"}) == true && at(dry, {"checks", "a4_codes_in_range"}) == true) ? "yes" : "no",
              at(dry, {"checks", "all_finite"}) == true ? "yes" : "no"})
      << "</table>\n";
  } else {
    h << missing("dryrun_7b.json", "bitnet-kde dryrun");
  }
  h << "<p class=missing>Sources: " << html_escape(layout.reports()) << "/*.json, " << html_escape(layout.checkpoints()) << "/&lt;role&gt;/metrics.jsonl.</p>\n"
    << "</body></html>\n";
  const std::string path = layout.html_report();
  ensure_dir(layout.reports());
  write_file_atomic(path, h.str());
  return path;
}

}  // namespace bkd

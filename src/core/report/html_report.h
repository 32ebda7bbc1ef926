#pragma once
// REPORTS_DIR/report.html: one self-contained page (inline SVG, no scripts, no network) built from
// what the stages wrote: training curves from CKPT_DIR/<role>/metrics.jsonl (total, KL, CE and format
// loss, grad norm before and after clipping, the A8->A4 flip), the teacher vs student table and QEI
// from mini_evaluation_report.json, the 7B dry-run, and the exit-criteria table of pipeline.json.
// Missing inputs leave their section out with a line saying which stage makes them.
#include <string>
#include <utility>
#include <vector>

namespace bkd {
class Settings;

// Writes REPORTS_DIR/report.html atomically; returns its path.
std::string write_html_report(const Settings& s);

// One line chart as an <svg> element: series of (x, y) points with names; vertical markers at xs
// with labels. Non-finite points are skipped. Exposed for tests.
struct ChartSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;
};
std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::vector<ChartSeries>& series,
                           const std::vector<std::pair<double, std::string>>& markers, bool log_y = false);

// Text escaped for HTML element content and attribute values.
std::string html_escape(const std::string& s);

}  // namespace bkd

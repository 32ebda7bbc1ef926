#include "core/http/retry_policy.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <ctime>

#include <nlohmann/json.hpp>

namespace bkd {
namespace {

std::optional<double> parse_number(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  while (end && *end == ' ') ++end;
  if (end == s.c_str() || (end && *end != '\0') || !std::isfinite(v)) return std::nullopt;
  return v;
}

// RFC 7231 IMF-fixdate: "Wed, 21 Oct 2015 07:28:00 GMT".
std::optional<double> parse_http_date(const std::string& s) {
  std::tm tm{};
  const char* end = strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end) return std::nullopt;
  return static_cast<double>(timegm(&tm));
}

const std::string* find_header(const HeaderMap& h, const char* name) {
  auto it = h.find(name);
  return it == h.end() ? nullptr : &it->second;
}

}  // namespace

bool is_retryable_status(int status) {
  return status == 408 || status == 409 || status == 429 || (status >= 500 && status <= 599);
}

std::optional<double> parse_duration_s(const std::string& text) {
  std::string s = text;
  if (!s.empty() && s.back() == 's') s.pop_back();
  auto v = parse_number(s);
  if (!v || *v < 0) return std::nullopt;
  return v;
}

std::optional<double> server_retry_hint_s(const HeaderMap& headers, const std::string& body, double now_unix) {
  if (const auto* ms = find_header(headers, "retry-after-ms")) {
    if (auto v = parse_number(*ms); v && *v >= 0) return *v / 1000.0;
  }
  if (const auto* ra = find_header(headers, "retry-after")) {
    if (auto v = parse_number(*ra); v && *v >= 0) return *v;
    if (auto t = parse_http_date(*ra)) return std::max(0.0, *t - now_unix);
  }
  // Gemini: {"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36s"}]}}
  if (body.find("RetryInfo") != std::string::npos) {
    auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (j.is_object() && j.contains("error") && j["error"].is_object()) {
      const auto& err = j["error"];
      if (err.contains("details") && err["details"].is_array()) {
        for (const auto& d : err["details"]) {
          if (!d.is_object()) continue;
          auto type = d.value("@type", std::string());
          if (type.find("RetryInfo") == std::string::npos) continue;
          if (d.contains("retryDelay") && d["retryDelay"].is_string())
            if (auto v = parse_duration_s(d["retryDelay"].get<std::string>())) return v;
        }
      }
    }
  }
  return std::nullopt;
}

std::optional<bool> server_should_retry(const HeaderMap& headers) {
  const auto* v = find_header(headers, "x-should-retry");
  if (!v) return std::nullopt;
  if (*v == "true") return true;
  if (*v == "false") return false;
  return std::nullopt;
}

std::optional<double> parse_reset_duration_s(const std::string& text) {
  if (text.empty()) return std::nullopt;
  double total = 0;
  size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    char* end = nullptr;
    double v = std::strtod(text.c_str() + i, &end);
    if (end == text.c_str() + i) return std::nullopt;
    i = static_cast<size_t>(end - text.c_str());
    std::string unit;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) unit.push_back(text[i++]);
    if (unit == "h") total += v * 3600;
    else if (unit == "m") total += v * 60;
    else if (unit == "s" || unit.empty()) total += v;
    else if (unit == "ms") total += v / 1000;
    else return std::nullopt;
    any = true;
  }
  if (!any || total < 0) return std::nullopt;
  return total;
}

std::optional<double> budget_exhausted_wait_s(const HeaderMap& headers, double now_unix) {
  std::optional<double> wait;
  auto consider = [&](const char* remaining, const char* reset, bool rfc3339) {
    const auto* rem = find_header(headers, remaining);
    const auto* rst = find_header(headers, reset);
    if (!rem || !rst || *rem != "0") return;
    std::optional<double> w;
    if (rfc3339) {
      std::tm tm{};
      if (strptime(rst->c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) w = std::max(0.0, static_cast<double>(timegm(&tm)) - now_unix);
    } else {
      w = parse_reset_duration_s(*rst);
    }
    if (w && (!wait || *w > *wait)) wait = w;
  };
  consider("x-ratelimit-remaining-requests", "x-ratelimit-reset-requests", false);
  consider("x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens", false);
  for (const char* kind : {"requests", "tokens", "input-tokens", "output-tokens"}) {
    const std::string base = std::string("anthropic-ratelimit-") + kind;
    consider((base + "-remaining").c_str(), (base + "-reset").c_str(), true);
  }
  return wait;
}

bool is_zero_quota_message(const std::string& body) {
  return body.find("RESOURCE_EXHAUSTED") != std::string::npos &&
         (body.find("limit: 0") != std::string::npos || body.find("limit:0") != std::string::npos);
}

double backoff_delay_s(const BackoffPolicy& p, int attempt, double u01) {
  double d = p.base_s * std::pow(2.0, std::min(attempt, 60));
  d = std::min(d, p.max_s);
  return d * (1.0 - p.jitter * std::clamp(u01, 0.0, 1.0));
}

}  // namespace bkd

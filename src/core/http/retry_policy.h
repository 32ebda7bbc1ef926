#pragma once
// When and how long to wait before retrying an HTTP request. Pure functions, so the rules are
// testable without a network: which statuses are worth another try, what the server asked for
// (retry-after-ms, retry-after, Gemini's RetryInfo.retryDelay), and exponential backoff with jitter.
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace bkd {

// 408, 409, 429, every 5xx (incl. Anthropic's 529 "overloaded"). Other 4xx are the caller's fault.
bool is_retryable_status(int status);

// Header names are lower-case in the maps passed here.
using HeaderMap = std::map<std::string, std::string>;

// Seconds the server asked us to wait, or nullopt when it said nothing usable. Order:
// retry-after-ms (float ms), retry-after (float seconds or an HTTP-date), then the JSON body's
// google.rpc.RetryInfo retryDelay ("36s", "3.957s"). `now_unix` converts HTTP-dates.
std::optional<double> server_retry_hint_s(const HeaderMap& headers, const std::string& body, double now_unix);

// "36s", "3.957525076s", "1.5" -> seconds; nullopt when not a duration.
std::optional<double> parse_duration_s(const std::string& text);

// OpenAI's reset durations ("6m0s", "1s", "12ms", "1h2m3.5s") -> seconds.
std::optional<double> parse_reset_duration_s(const std::string& text);

// When a response says a budget is spent (x-ratelimit-remaining-{requests,tokens}: 0, or
// anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-remaining: 0), the seconds
// until its reset (OpenAI: a duration; Anthropic: an RFC 3339 time). nullopt when nothing is spent.
std::optional<double> budget_exhausted_wait_s(const HeaderMap& headers, double now_unix);

// `x-should-retry: true|false` overrides the status rule when present (OpenAI/Anthropic convention).
std::optional<bool> server_should_retry(const HeaderMap& headers);

// Gemini's "limit: 0" quota message: the tier has no quota for this model; waiting cannot help.
bool is_zero_quota_message(const std::string& body);

struct BackoffPolicy {
  double base_s = 0.5;        // first delay
  double max_s = 8.0;         // cap of the exponential part
  double max_hint_s = 120.0;  // a server hint longer than this is not waited for (give up instead)
  double jitter = 0.25;       // delay * (1 - jitter * u), u uniform in [0, 1)
};

// Delay before retry number `attempt` (0-based): min(base * 2^attempt, max) * (1 - jitter*u).
double backoff_delay_s(const BackoffPolicy& p, int attempt, double u01);

}  // namespace bkd

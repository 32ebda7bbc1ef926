#pragma once
// The one way this project talks HTTP to providers: libcurl with timeouts, retries (exponential
// backoff + jitter, honouring the server's retry hints), client-side rate limits, a cap on requests
// in flight, a content-addressed response cache, and a refusal to leave the machine unless allowed.
// Keys travel only in headers: they are never part of a cache key, a cache entry, a log line or an
// error message (error text passes through redact()).
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/http/rate_limiter.h"
#include "core/http/response_cache.h"
#include "core/http/retry_policy.h"
#include "core/util/error.h"

namespace bkd {

struct HttpRequest {
  std::string method = "POST";
  std::string url;  // must not carry a key (use a header)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool use_cache = true;       // read and write the response cache
  double token_estimate = 0;   // charged against the tokens/min budget
  // Checks a 2xx body (e.g. "parses as the JSON we expect"); returns "" when fine, else why not.
  // A body that fails is treated like a transient fault (retried, never cached): proxies truncate.
  std::function<std::string(const std::string& body)> validate;
  // Streaming replies: called with the body received so far after each chunk; the first time it
  // returns true marks the time to first token (HttpResponse::first_token_s).
  std::function<bool(const std::string& body_so_far)> first_token_seen;
};

struct HttpResponse {
  int status = 0;
  HeaderMap headers;  // lower-case names; empty for cached responses
  std::string body;
  bool from_cache = false;
  double elapsed_s = 0;  // the successful attempt's transfer time (original one for cached)
  double ttfb_s = -1;    // time to the first response byte
  double first_token_s = -1;  // when first_token_seen first said yes (streaming), else -1
  int attempts = 0;
  double waited_s = 0;   // backoff sleeps + rate-limit waits
  bool ok() const { return status >= 200 && status < 300; }
};

// Transport failures (status 0) and failed HTTP statuses. The message is already redacted.
class HttpError : public Error {
 public:
  HttpError(const std::string& what, int status, std::string hint = {})
      : Error(what, std::move(hint)), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

struct HttpOptions {
  double timeout_s = 60;
  double connect_timeout_s = 10;
  int max_retries = 5;
  BackoffPolicy backoff;
  double requests_per_min = 0;  // 0 = unlimited
  double tokens_per_min = 0;    // 0 = unlimited
  double burst_s = 1.0;         // bucket capacity = rate * burst_s (at least one unit)
  int max_in_flight = 4;
  std::string cache_dir;        // empty: no cache
  bool allow_external = false;  // false: only loopback hosts (SKIP_EXTERNAL)
  std::string user_agent = "bitnet-kde";
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions opts);
  ~HttpClient();

  // Sends with retries. Returns the final response whatever its status (a 4xx body often says what
  // is wrong; callers decide), throws HttpError when no response came back at all or a 2xx body
  // kept failing `validate`, and refuses non-loopback URLs unless allow_external.
  HttpResponse send(const HttpRequest& req);

  const HttpOptions& options() const { return opts_; }
  ResponseCache& cache() { return cache_; }

 private:
  struct Attempt {
    int status = 0;
    HeaderMap headers;
    std::string body;
    double elapsed_s = 0, ttfb_s = -1, first_token_s = -1;
    bool transport_error = false, transport_retryable = false;
    std::string transport_message;
  };
  Attempt perform(const HttpRequest& req);
  double jitter_u01();

  HttpOptions opts_;
  ResponseCache cache_;
  TokenBucket requests_, tokens_;
  InFlightLimit in_flight_;
  double wait_for_budget();  // sleeps until a spent provider budget resets; returns seconds slept
  void note_budget(const HeaderMap& headers);
  std::mutex budget_mu_;
  double not_before_ = 0;  // monotonic seconds
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

// "POST host/path: HTTP 400: <error.message from the body>" — redacted, bounded in length.
std::string describe_http_failure(const HttpRequest& req, const HttpResponse& resp);
// The provider's error message from a JSON error body ({"error":{"message"}}, {"error":"..."},
// {"message"}); falls back to the first 300 bytes of the body. Redacted.
std::string http_error_message(const std::string& body);
// scheme://host/path without the query string: what logs and errors show of a URL.
std::string url_for_display(const std::string& url);

}  // namespace bkd

#include "core/http/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <ctime>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/http/url.h"
#include "core/util/log.h"
#include "core/util/sysinfo.h"

namespace bkd {
namespace {

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct BodySink {
  std::string* body;
  const std::function<bool(const std::string&)>* first_token_seen;
  std::chrono::steady_clock::time_point start;
  double* first_token_s;
};

size_t on_body(char* ptr, size_t size, size_t n, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  sink->body->append(ptr, size * n);
  if (*sink->first_token_s < 0 && *sink->first_token_seen && (*sink->first_token_seen)(*sink->body))
    *sink->first_token_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - sink->start).count();
  return size * n;
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

size_t on_header(char* ptr, size_t size, size_t n, void* user) {
  auto* headers = static_cast<HeaderMap*>(user);
  std::string line(ptr, size * n);
  if (line.rfind("HTTP/", 0) == 0) headers->clear();  // a new response (after 100-continue)
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    (*headers)[trim(name)] = trim(line.substr(colon + 1));
  }
  return size * n;
}

bool transport_retryable(CURLcode c) {
  switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      return false;
    default:
      return true;  // timeouts, refused/reset connections, truncated transfers, DNS hiccups
  }
}

void sleep_s(double s) {
  if (s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

}  // namespace

std::string url_for_display(const std::string& url) {
  return redact(url.substr(0, url.find_first_of("?#")));
}

std::string http_error_message(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  std::string msg;
  if (j.is_array() && !j.empty()) j = j[0];  // Gemini streams wrap errors in an array
  if (j.is_object()) {
    if (j.contains("error")) {
      const auto& e = j["error"];
      if (e.is_object() && e.contains("message") && e["message"].is_string()) msg = e["message"];
      else if (e.is_string()) msg = e.get<std::string>();
    } else if (j.contains("message") && j["message"].is_string()) {
      msg = j["message"];
    }
  }
  if (msg.empty()) msg = body.substr(0, 300);
  if (msg.size() > 500) msg = msg.substr(0, 500) + "...";
  return redact(msg);
}

std::string describe_http_failure(const HttpRequest& req, const HttpResponse& resp) {
  std::string s = req.method + " " + url_for_display(req.url) + ": HTTP " + std::to_string(resp.status);
  if (resp.attempts > 1) s += " after " + std::to_string(resp.attempts) + " attempts";
  const std::string msg = http_error_message(resp.body);
  if (!msg.empty()) s += ": " + msg;
  return redact(s);
}

HttpClient::HttpClient(HttpOptions opts)
    : opts_(std::move(opts)),
      cache_(opts_.cache_dir),
      requests_(opts_.requests_per_min, opts_.requests_per_min / 60.0 * opts_.burst_s),
      tokens_(opts_.tokens_per_min, opts_.tokens_per_min / 60.0 * opts_.burst_s),
      in_flight_(opts_.max_in_flight),
      rng_(std::random_device{}()) {
  global_init_once();
}

HttpClient::~HttpClient() = default;

double HttpClient::jitter_u01() {
  std::lock_guard<std::mutex> lock(rng_mu_);
  return std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
}

HttpClient::Attempt HttpClient::perform(const HttpRequest& req) {
  Attempt a;
  CURL* h = curl_easy_init();
  if (!h) {
    a.transport_error = true;
    a.transport_message = "curl_easy_init failed";
    return a;
  }
  struct curl_slist* hdrs = nullptr;
  for (const auto& [k, v] : req.headers) hdrs = curl_slist_append(hdrs, (k + ": " + v).c_str());
  if (!req.body.empty() && std::none_of(req.headers.begin(), req.headers.end(), [](const auto& kv) {
        return kv.first == "Content-Type" || kv.first == "content-type";
      }))
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
  hdrs = curl_slist_append(hdrs, "Expect:");  // no 100-continue round trip

  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  if (req.method != "GET") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req.body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  BodySink sink{&a.body, &req.first_token_seen, std::chrono::steady_clock::now(), &a.first_token_s};
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &a.headers);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(opts_.timeout_s * 1000));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::min(opts_.connect_timeout_s, opts_.timeout_s) * 1000));
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect must never carry our key elsewhere
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(h, CURLOPT_USERAGENT, opts_.user_agent.c_str());
  if (is_loopback_url(req.url)) curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);

  sink.start = std::chrono::steady_clock::now();  // one clock for elapsed and first-token times
  CURLcode rc = curl_easy_perform(h);
  a.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - sink.start).count();
  curl_off_t ttfb_us = 0;
  curl_easy_getinfo(h, CURLINFO_STARTTRANSFER_TIME_T, &ttfb_us);
  a.ttfb_s = ttfb_us > 0 ? ttfb_us / 1e6 : -1;
  if (rc != CURLE_OK) {
    a.transport_error = true;
    a.transport_retryable = transport_retryable(rc);
    a.transport_message = std::string(curl_easy_strerror(rc)) + (errbuf[0] ? std::string(" (") + errbuf + ")" : "");
  } else {
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    a.status = static_cast<int>(status);
  }
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  return a;
}

double HttpClient::wait_for_budget() {
  double until;
  {
    std::lock_guard<std::mutex> lock(budget_mu_);
    until = not_before_;
  }
  const double d = until - monotonic_seconds();
  if (d <= 0) return 0;
  sleep_s(d);
  return d;
}

void HttpClient::note_budget(const HeaderMap& headers) {
  auto w = budget_exhausted_wait_s(headers, static_cast<double>(std::time(nullptr)));
  if (!w || *w <= 0) return;
  const double wait = std::min(*w, opts_.backoff.max_hint_s);
  log_info("provider budget spent (x-ratelimit / anthropic-ratelimit headers); pausing new requests for " +
           std::to_string(wait) + "s");
  std::lock_guard<std::mutex> lock(budget_mu_);
  not_before_ = std::max(not_before_, monotonic_seconds() + wait);
}

HttpResponse HttpClient::send(const HttpRequest& req) {
  const std::string where = req.method + " " + url_for_display(req.url);
  if (!opts_.allow_external && !is_loopback_url(req.url))
    throw HttpError("refusing to contact " + url_for_display(req.url) + ": SKIP_EXTERNAL is set", 0,
                    "set SKIP_EXTERNAL=false to allow requests that leave this machine");

  const std::string key = ResponseCache::key(req.method, req.url, req.body);
  if (req.use_cache && cache_.enabled()) {
    auto hit = cache_.get(key);
    if (hit && req.validate && !req.validate(hit->body).empty()) hit.reset();  // stale shape: refetch
    if (hit) {
      HttpResponse r;
      r.status = hit->status;
      r.body = std::move(hit->body);
      r.from_cache = true;
      r.elapsed_s = hit->elapsed_s;
      r.ttfb_s = hit->ttfb_s;
      r.first_token_s = hit->first_token_s;
      return r;
    }
  }

  HttpResponse resp;
  resp.waited_s += requests_.acquire(1);
  if (req.token_estimate > 0) resp.waited_s += tokens_.acquire(req.token_estimate);

  for (int attempt = 0;; ++attempt) {
    Attempt a;
    resp.waited_s += wait_for_budget();
    {
      InFlightSlot slot(in_flight_);
      a = perform(req);
    }
    if (!a.transport_error) note_budget(a.headers);
    resp.attempts = attempt + 1;
    const bool last = attempt >= opts_.max_retries;
    if (a.transport_error) {
      const std::string msg = where + ": " + a.transport_message;
      if (!a.transport_retryable || last)
        throw HttpError(redact(msg + (resp.attempts > 1 ? " (after " + std::to_string(resp.attempts) + " attempts)" : "")), 0,
                        "check the base URL and that the server is up; HTTP_TIMEOUT_S and HTTP_MAX_RETRIES tune patience");
      double d = backoff_delay_s(opts_.backoff, attempt, jitter_u01());
      log_warn(msg + "; retry " + std::to_string(attempt + 1) + "/" + std::to_string(opts_.max_retries) + " in " +
               std::to_string(d) + "s");
      sleep_s(d);
      resp.waited_s += d;
      continue;
    }

    resp.status = a.status;
    resp.headers = std::move(a.headers);
    resp.body = std::move(a.body);
    resp.elapsed_s = a.elapsed_s;
    resp.ttfb_s = a.ttfb_s;
    resp.first_token_s = a.first_token_s;
    if (resp.ok() && req.validate) {
      if (std::string why = req.validate(resp.body); !why.empty()) {
        const std::string msg = where + ": unusable response body (" + why + ")";
        if (last)
          throw HttpError(redact(msg + " after " + std::to_string(resp.attempts) + " attempts"), resp.status,
                          "the server returned malformed or truncated data; try again later or check the server");
        double d = backoff_delay_s(opts_.backoff, attempt, jitter_u01());
        log_warn(msg + "; retry " + std::to_string(attempt + 1) + "/" + std::to_string(opts_.max_retries));
        sleep_s(d);
        resp.waited_s += d;
        continue;
      }
    }
    if (resp.ok()) {
      if (req.use_cache && cache_.enabled()) {
        // Never store a response that carries a secret (a server echoing a key, say).
        if (redact(resp.body) == resp.body)
          cache_.put(key, {resp.status, resp.body, resp.elapsed_s, resp.ttfb_s, resp.first_token_s, iso8601_utc_now()});
        else
          log_warn(where + ": response looks like it contains a secret; not cached");
      }
      return resp;
    }

    bool retry = is_retryable_status(resp.status);
    if (auto s = server_should_retry(resp.headers)) retry = *s;
    if (is_zero_quota_message(resp.body)) retry = false;  // no quota at all: waiting cannot help
    if (!retry || last) return resp;

    double delay = backoff_delay_s(opts_.backoff, attempt, jitter_u01());
    const double now_unix = static_cast<double>(std::time(nullptr));
    if (auto hint = server_retry_hint_s(resp.headers, resp.body, now_unix)) {
      if (*hint > opts_.backoff.max_hint_s) {
        log_warn(where + ": HTTP " + std::to_string(resp.status) + " asks to wait " + std::to_string(*hint) +
                 "s (more than " + std::to_string(opts_.backoff.max_hint_s) + "s); giving up");
        return resp;
      }
      if (*hint > 0) delay = *hint;
    }
    log_warn(where + ": HTTP " + std::to_string(resp.status) + "; retry " + std::to_string(attempt + 1) + "/" +
             std::to_string(opts_.max_retries) + " in " + std::to_string(delay) + "s");
    sleep_s(delay);
    resp.waited_s += delay;
  }
}

}  // namespace bkd

// HttpClient against a scripted loopback server: retries and their hints, timeouts, the response
// cache, client-side limits, and keys that must never leak into errors or cache files.
#include "core/http/http_client.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "core/http/response_cache.h"
#include "core/http/url.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/util/sysinfo.h"
#include "http_fault_server.h"
#include "test_util.h"

namespace bkd {
namespace {
using testing::FaultServer;
using testing::ScriptedReply;

HttpOptions fast_options() {
  HttpOptions o;
  o.timeout_s = 2;
  o.connect_timeout_s = 1;
  o.max_retries = 3;
  o.backoff.base_s = 0.005;  // millisecond-scale backoff keeps the suite fast
  o.backoff.max_s = 0.02;
  o.backoff.max_hint_s = 1.0;
  return o;
}

HttpRequest post(const FaultServer& s, const std::string& path, const std::string& body = "{}") {
  HttpRequest r;
  r.url = s.base_url() + path;
  r.body = body;
  return r;
}

std::string temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("bkd_http_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d.string();
}

TEST(HttpRetryPolicy, RetriesOnlyTransientStatuses) {
  for (int s : {408, 409, 429, 500, 502, 503, 504, 529}) EXPECT_TRUE(is_retryable_status(s)) << s;
  for (int s : {200, 400, 401, 403, 404, 413, 422}) EXPECT_FALSE(is_retryable_status(s)) << s;
}

TEST(HttpRetryPolicy, ReadsServerHintsInOrder) {
  HeaderMap h{{"retry-after-ms", "250"}, {"retry-after", "7"}};
  EXPECT_DOUBLE_EQ(*server_retry_hint_s(h, "", 0), 0.25);
  h.erase("retry-after-ms");
  EXPECT_DOUBLE_EQ(*server_retry_hint_s(h, "", 0), 7.0);
  h["retry-after"] = "1.5";
  EXPECT_DOUBLE_EQ(*server_retry_hint_s(h, "", 0), 1.5);
  // HTTP-date: 2015-10-21 07:28:00 UTC = 1445412480.
  h["retry-after"] = "Wed, 21 Oct 2015 07:28:00 GMT";
  EXPECT_DOUBLE_EQ(*server_retry_hint_s(h, "", 1445412480.0 - 30), 30.0);
  h["retry-after"] = "soon";
  EXPECT_FALSE(server_retry_hint_s(h, "", 0).has_value());
  const std::string gemini = R"({"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"Please retry in 36s.",
    "details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]},
               {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3.957525076s"}]}})";
  EXPECT_NEAR(*server_retry_hint_s({}, gemini, 0), 3.957525076, 1e-9);
  EXPECT_FALSE(server_retry_hint_s({}, R"({"error":{"details":[{"@type":"x.RetryInfo"}]}})", 0).has_value());
  EXPECT_FALSE(server_retry_hint_s({}, "{not json RetryInfo", 0).has_value());
}

TEST(HttpRetryPolicy, BackoffGrowsThenCapsWithJitter) {
  BackoffPolicy p;
  p.base_s = 0.5;
  p.max_s = 8;
  p.jitter = 0.25;
  EXPECT_DOUBLE_EQ(backoff_delay_s(p, 0, 0), 0.5);
  EXPECT_DOUBLE_EQ(backoff_delay_s(p, 3, 0), 4.0);
  EXPECT_DOUBLE_EQ(backoff_delay_s(p, 10, 0), 8.0);
  EXPECT_DOUBLE_EQ(backoff_delay_s(p, 10, 1.0), 6.0);
  EXPECT_DOUBLE_EQ(backoff_delay_s(p, 1, 0.5), 1.0 * 0.875);
}

TEST(HttpRetryPolicy, SpentBudgetsFromRateLimitHeaders) {
  EXPECT_DOUBLE_EQ(*parse_reset_duration_s("6m0s"), 360);
  EXPECT_DOUBLE_EQ(*parse_reset_duration_s("12ms"), 0.012);
  EXPECT_DOUBLE_EQ(*parse_reset_duration_s("1h2m3.5s"), 3723.5);
  EXPECT_FALSE(parse_reset_duration_s("soon").has_value());
  EXPECT_FALSE(budget_exhausted_wait_s({{"x-ratelimit-remaining-requests", "5"}, {"x-ratelimit-reset-requests", "1s"}}, 0));
  EXPECT_DOUBLE_EQ(*budget_exhausted_wait_s({{"x-ratelimit-remaining-requests", "0"}, {"x-ratelimit-reset-requests", "1s"},
                                             {"x-ratelimit-remaining-tokens", "0"}, {"x-ratelimit-reset-tokens", "2.5s"}}, 0),
                   2.5);
  // Anthropic: RFC 3339 reset times. 2025-08-21T12:40:59Z = 1755780059.
  EXPECT_DOUBLE_EQ(*budget_exhausted_wait_s({{"anthropic-ratelimit-tokens-remaining", "0"},
                                             {"anthropic-ratelimit-tokens-reset", "2025-08-21T12:40:59Z"}},
                                            1755780059.0 - 4),
                   4.0);
}

TEST(HttpRetryPolicy, ZeroQuotaIsNotWorthWaitingFor) {
  EXPECT_TRUE(is_zero_quota_message(R"({"error":{"status":"RESOURCE_EXHAUSTED","message":"Quota exceeded, limit: 0"}})"));
  EXPECT_FALSE(is_zero_quota_message(R"({"error":{"status":"RESOURCE_EXHAUSTED","message":"limit: 15"}})"));
}

TEST(HttpUrl, HostsAndLoopback) {
  EXPECT_EQ(url_host("http://127.0.0.1:8080/v1"), "127.0.0.1");
  EXPECT_EQ(url_host("https://API.openai.com/v1/chat"), "api.openai.com");
  EXPECT_EQ(url_host("http://[::1]:9/x"), "::1");
  EXPECT_EQ(url_host("http://user:pw@localhost:1/"), "localhost");
  EXPECT_TRUE(is_loopback_url("http://localhost:1/"));
  EXPECT_TRUE(is_loopback_url("http://127.0.0.5/"));
  EXPECT_FALSE(is_loopback_url("http://127.0.0.1.evil.com/"));
  EXPECT_FALSE(is_loopback_url("https://api.groq.com/openai/v1"));
  EXPECT_EQ(join_url("http://h/v1/", "/chat/completions"), "http://h/v1/chat/completions");
}

TEST(HttpClient, RetriesA429HonouringRetryAfterMs) {
  FaultServer s;
  s.script("/x", {{429, R"({"error":{"message":"slow down","type":"rate_limit_error"}})", {{"retry-after-ms", "60"}}},
                  {200, R"({"ok":true})"}});
  HttpClient c(fast_options());
  Timer t;
  auto r = c.send(post(s, "/x"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.attempts, 2);
  EXPECT_GE(r.waited_s, 0.06);  // the hint, not the 5 ms backoff
  EXPECT_GE(t.seconds(), 0.06);
  EXPECT_EQ(s.hits(), 2u);
}

TEST(HttpClient, PausesWhenTheProviderSaysTheBudgetIsSpent) {
  FaultServer s;
  s.script("/x", {{200, "{}", {{"x-ratelimit-remaining-requests", "0"}, {"x-ratelimit-reset-requests", "80ms"}}}, {200, "{}"}});
  HttpClient c(fast_options());
  HttpRequest r = post(s, "/x");
  r.use_cache = false;
  // The pause runs 80 ms from the first reply; a timer started before the first request has seen
  // all of it by the time the second returns, however the machine schedules the two.
  Timer t;
  EXPECT_EQ(c.send(r).waited_s, 0);
  auto second = c.send(r);
  EXPECT_GT(second.waited_s, 0);
  EXPECT_GE(t.seconds(), 0.08);
}

TEST(HttpClient, RetriesA429HonouringRetryAfterSeconds) {
  FaultServer s;
  s.script("/x", {{429, "{}", {{"retry-after", "0.05"}}}, {200, "{}"}});
  HttpClient c(fast_options());
  auto r = c.send(post(s, "/x"));
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(r.waited_s, 0.05);
}

TEST(HttpClient, RetriesGeminiResourceExhaustedUsingRetryInfo) {
  FaultServer s;
  s.script("/x", {{429, R"({"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"retry later",
    "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"0.07s"}]}})"},
                  {200, "{}"}});
  HttpClient c(fast_options());
  auto r = c.send(post(s, "/x"));
  EXPECT_EQ(r.status, 200);
  EXPECT_GE(r.waited_s, 0.07);
}

TEST(HttpClient, GivesUpWhenTheHintIsLongerThanTheCap) {
  FaultServer s;
  s.script("/x", {{429, "{}", {{"retry-after", "600"}}}, {200, "{}"}});
  HttpClient c(fast_options());
  Timer t;
  auto r = c.send(post(s, "/x"));
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_LT(t.seconds(), 0.5);
}

TEST(HttpClient, Retries500And529ButNot400) {
  FaultServer s;
  s.script("/a", {{500, "{}"}, {529, R"({"type":"error","error":{"type":"overloaded_error"}})"}, {200, "{}"}});
  s.script("/b", {{400, R"({"error":{"message":"bad request"}})"}, {200, "{}"}});
  s.script("/c", {{404, "{}"}, {200, "{}"}});
  HttpClient c(fast_options());
  auto a = c.send(post(s, "/a"));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.attempts, 3);
  auto b = c.send(post(s, "/b"));
  EXPECT_EQ(b.status, 400);
  EXPECT_EQ(b.attempts, 1);
  EXPECT_NE(describe_http_failure(post(s, "/b"), b).find("bad request"), std::string::npos);
  EXPECT_EQ(c.send(post(s, "/c")).attempts, 1);
}

TEST(HttpClient, XShouldRetryOverridesTheStatusRule) {
  FaultServer s;
  s.script("/x", {{500, "{}", {{"x-should-retry", "false"}}}, {200, "{}"}});
  HttpClient c(fast_options());
  EXPECT_EQ(c.send(post(s, "/x")).status, 500);
  EXPECT_EQ(s.hits(), 1u);
}

TEST(HttpClient, StopsAfterMaxRetries) {
  FaultServer s;
  s.script("/x", {{503, R"({"error":{"message":"overloaded"}})"}});
  auto o = fast_options();
  o.max_retries = 2;
  HttpClient c(o);
  auto r = c.send(post(s, "/x"));
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(s.hits(), 3u);
  EXPECT_NE(describe_http_failure(post(s, "/x"), r).find("after 3 attempts"), std::string::npos);
}

TEST(HttpClient, TimesOutRetriesThenReportsTheTimeout) {
  FaultServer s;
  s.script("/slow", {{200, "{}", {}, 1500}});
  auto o = fast_options();
  o.timeout_s = 0.15;
  o.max_retries = 1;
  HttpClient c(o);
  Timer t;
  try {
    c.send(post(s, "/slow"));
    FAIL() << "expected a timeout";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), 0);
    EXPECT_NE(std::string(e.what()).find("imeout"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("2 attempts"), std::string::npos) << e.what();
  }
  EXPECT_LT(t.seconds(), 1.4);  // two 0.15 s timeouts, not the server's 1.5 s delay
}

TEST(HttpClient, RecoversFromATimeoutOnRetry) {
  FaultServer s;
  s.script("/x", {{200, "{}", {}, 1200}, {200, R"({"fine":1})"}});
  auto o = fast_options();
  o.timeout_s = 0.5;
  HttpClient c(o);
  auto r = c.send(post(s, "/x"));
  EXPECT_EQ(r.body, R"({"fine":1})");
  EXPECT_EQ(r.attempts, 2);
}

TEST(HttpClient, ConnectionRefusedIsATransportError) {
  int port;
  {
    FaultServer s;
    port = s.port();
  }
  auto o = fast_options();
  o.max_retries = 1;
  HttpClient c(o);
  HttpRequest r;
  r.url = "http://127.0.0.1:" + std::to_string(port) + "/gone";
  EXPECT_THROW(c.send(r), HttpError);
}

TEST(HttpClient, TruncatedBodiesAreRetriedAndNeverCached) {
  FaultServer s;
  s.script("/x", {{200, R"({"choices":[{"mess)"}, {200, R"({"choices":[]})"}});
  auto o = fast_options();
  o.cache_dir = temp_dir("trunc");
  HttpClient c(o);
  HttpRequest req = post(s, "/x");
  req.validate = [](const std::string& b) {
    return nlohmann::json::accept(b) ? std::string() : std::string("not JSON");
  };
  auto r = c.send(req);
  EXPECT_EQ(r.body, R"({"choices":[]})");
  EXPECT_EQ(r.attempts, 2);

  FaultServer bad;
  bad.script("/x", {{200, "<html>proxy error"}});
  HttpRequest req2 = post(bad, "/x");
  req2.validate = req.validate;
  EXPECT_THROW(c.send(req2), HttpError);
  auto again = c.send(req);  // the good one is cached now; the bad one never was
  EXPECT_TRUE(again.from_cache);
  HttpClient c2(o);
  bad.script("/x", {{200, R"({"late":1})"}});
  EXPECT_FALSE(c2.send(req2).from_cache);
}

TEST(HttpClient, CacheServesRepeatsAndKeysNeverReachDisk) {
  const std::string key = "sk-" "test-CACHEKEY-0123456789abcdef";
  register_secret(key);
  FaultServer s;
  s.script("/v1/chat/completions", {{200, R"({"id":"one","text":"hello"})", {}, 30}});
  auto o = fast_options();
  o.cache_dir = temp_dir("cache");
  HttpClient c(o);
  HttpRequest req = post(s, "/v1/chat/completions", R"({"model":"m","prompt":"p"})");
  req.headers = {{"Authorization", "Bearer " + key}};
  auto first = c.send(req);
  EXPECT_FALSE(first.from_cache);
  auto second = c.send(req);
  EXPECT_TRUE(second.from_cache);
  EXPECT_EQ(second.body, first.body);
  EXPECT_GE(second.elapsed_s, 0.03);  // the original latency travels with the entry
  EXPECT_EQ(s.hits(), 1u);

  // A different key header does not change the cache key; a different body does.
  HttpRequest other_key = req;
  other_key.headers = {{"Authorization", "Bearer sk-" "another-key-000000000000"}};
  EXPECT_TRUE(c.send(other_key).from_cache);
  HttpRequest other_body = req;
  other_body.body = R"({"model":"m","prompt":"q"})";
  EXPECT_FALSE(c.send(other_body).from_cache);
  HttpRequest no_cache = req;
  no_cache.use_cache = false;
  EXPECT_FALSE(c.send(no_cache).from_cache);
  EXPECT_EQ(s.hits(), 3u);

  // One entry per distinct request, at its content address, holding no key; no temp files left.
  int files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(o.cache_dir)) {
    if (!e.is_regular_file()) continue;
    ++files;
    const std::string text = read_file(e.path().string());
    EXPECT_EQ(text.find(key), std::string::npos);
    EXPECT_EQ(text.find("Authorization"), std::string::npos);
    EXPECT_EQ(e.path().extension(), ".json");
  }
  EXPECT_EQ(files, 2);
  EXPECT_TRUE(file_exists(c.cache().path_for(ResponseCache::key("POST", req.url, req.body))));
}

TEST(HttpClient, KeysNeverAppearInErrors) {
  const std::string key = "sk-" "test-ERRORKEY-abcdef0123456789";
  register_secret(key);
  FaultServer s;
  // A hostile or careless server echoes the key back in its error.
  s.script("/x", {{401, R"({"error":{"message":"Incorrect API key provided: )" + key + R"("}})"}});
  HttpClient c(fast_options());
  HttpRequest req = post(s, "/x");
  req.headers = {{"Authorization", "Bearer " + key}};
  auto r = c.send(req);
  const std::string msg = describe_http_failure(req, r);
  EXPECT_NE(msg.find("HTTP 401"), std::string::npos);
  EXPECT_EQ(msg.find(key), std::string::npos) << msg;
  EXPECT_NE(msg.find("[REDACTED]"), std::string::npos);
  EXPECT_EQ(http_error_message(r.body).find(key), std::string::npos);
  // The header really was sent (so the test is not vacuous).
  EXPECT_EQ(s.seen()[0].headers.find("Authorization")->second, "Bearer " + key);
}

TEST(HttpClient, RefusesExternalHostsUnlessAllowed) {
  HttpClient c(fast_options());
  HttpRequest r;
  r.url = "https://api.openai.com/v1/chat/completions";
  try {
    c.send(r);
    FAIL();
  } catch (const HttpError& e) {
    EXPECT_NE(std::string(e.what()).find("SKIP_EXTERNAL"), std::string::npos);
  }
}

TEST(HttpClient, CapsRequestsInFlight) {
  FaultServer s;
  s.script("/x", {{200, "{}", {}, 60}});
  auto o = fast_options();
  o.max_in_flight = 2;
  HttpClient c(o);
  std::vector<std::thread> ts;
  for (int i = 0; i < 6; ++i) ts.emplace_back([&] { c.send([&] { auto r = post(s, "/x"); r.use_cache = false; return r; }()); });
  for (auto& t : ts) t.join();
  EXPECT_EQ(s.hits(), 6u);
  EXPECT_LE(s.max_concurrent(), 2);
  EXPECT_GE(s.max_concurrent(), 1);
}

TEST(HttpClient, RequestsPerMinuteLimitSpacesRequests) {
  FaultServer s;
  s.script("/x", {{200, "{}"}});
  auto o = fast_options();
  o.requests_per_min = 1200;  // 20/s; burst of one
  o.burst_s = 0.05;
  HttpClient c(o);
  Timer t;
  for (int i = 0; i < 5; ++i) c.send(post(s, "/x"));
  EXPECT_GE(t.seconds(), 4 * 0.05 * 0.9);
}

TEST(HttpClient, TokensPerMinuteLimitSpacesRequests) {
  FaultServer s;
  s.script("/x", {{200, "{}"}});
  auto o = fast_options();
  o.tokens_per_min = 60000;  // 1000 tokens/s, burst 100 tokens
  o.burst_s = 0.1;
  HttpClient c(o);
  Timer t;
  for (int i = 0; i < 4; ++i) {
    HttpRequest r = post(s, "/x");
    r.token_estimate = 100;
    c.send(r);
  }
  EXPECT_GE(t.seconds(), 3 * 0.1 * 0.9);
}

TEST(HttpTokenBucket, DisabledBucketNeverWaits) {
  TokenBucket b(0, 0);
  // acquire returns the seconds it waited: exactly zero every time, however busy the machine is.
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(b.acquire(1000), 0.0) << i;
}

// The temp file write_file_atomic would leave for `entry` (without a host tag: the older form).
std::string temp_name(const std::string& entry, pid_t pid, int n, const std::string& host = "") {
  return entry + ".tmp." + std::to_string(pid) + "." + std::to_string(n) + (host.empty() ? "" : "." + host);
}

pid_t pid_that_no_longer_runs() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  if (child < 0) throw std::runtime_error("fork failed");
  ::waitpid(child, nullptr, 0);
  return child;
}

// A writer killed between its temp file and the rename leaves "<entry>.tmp.<pid>.<n>": the cache
// removes those of dead processes when it opens, and leaves a live writer's alone.
TEST(ResponseCache, RemovesTempFilesOfKilledWriters) {
  bkd::test::TempDir d;
  const std::string dir = d.file("http");
  ensure_dir(dir + "/ab");
  const pid_t child = pid_that_no_longer_runs();
  const std::string dead = temp_name(dir + "/ab/abcd.json", child, 12345);
  const std::string live = temp_name(dir + "/ab/abce.json", ::getpid(), 7);
  const std::string entry = dir + "/ab/abcf.json";
  for (const auto& f : {dead, live, entry}) write_file_atomic(f, "{}");
  ResponseCache cache(dir);
  EXPECT_FALSE(file_exists(dead));
  EXPECT_TRUE(file_exists(live));
  EXPECT_TRUE(file_exists(entry));
}

// A cache folder shared by collection workers on several machines: another host's temp file is a live
// write whose pid cannot be checked from here, so it stays (until it is a day old); this host's dead
// writer's temp file goes. Without the host tag the other host's file would be swept and its rename
// would fail mid-collection.
TEST(ResponseCache, SharedFolderKeepsOtherHostsTempFilesUntilTheyAreStale) {
  bkd::test::TempDir d;
  const std::string dir = d.file("http");
  ensure_dir(dir + "/ab");
  const pid_t child = pid_that_no_longer_runs();
  const std::string other_host = host_tag() == "00000000" ? "00000001" : "00000000";
  const std::string mine_dead = temp_name(dir + "/ab/a1.json", child, 5, host_tag());
  const std::string theirs_fresh = temp_name(dir + "/ab/a2.json", child, 6, other_host);
  const std::string theirs_stale = temp_name(dir + "/ab/a3.json", child, 7, other_host);
  for (const auto& f : {mine_dead, theirs_fresh, theirs_stale}) write_file_atomic(f, "{}");
  std::filesystem::last_write_time(theirs_stale, std::filesystem::file_time_type::clock::now() - std::chrono::hours(25));
  ResponseCache cache(dir);
  EXPECT_FALSE(file_exists(mine_dead));
  EXPECT_TRUE(file_exists(theirs_fresh));
  EXPECT_FALSE(file_exists(theirs_stale));
}

// Two processes putting and getting the same keys at once: every read is a miss or a whole entry.
TEST(ResponseCache, ConcurrentWritersNeverExposeAPartialEntry) {
  bkd::test::TempDir d;
  const std::string dir = d.file("http");
  const std::string body(200000, 'x');  // large enough that a torn write would show
  pid_t kids[2];
  for (int k = 0; k < 2; ++k) {
    kids[k] = ::fork();
    if (kids[k] == 0) {
      ResponseCache c(dir);
      int bad = 0;
      for (int i = 0; i < 200; ++i) {
        const std::string key = ResponseCache::key("POST", "http://x/v1", std::to_string(i % 7));
        c.put(key, CachedResponse{200, body + std::to_string(i % 7), 0.1, -1, -1, ""});
        auto got = c.get(key);
        if (!got || got->body != body + std::to_string(i % 7)) ++bad;
      }
      ::_exit(bad == 0 ? 0 : 1);
    }
  }
  for (pid_t k : kids) {
    int st = 0;
    ::waitpid(k, &st, 0);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
}

TEST(HttpUrl, ProblemsAreNamed) {
  EXPECT_EQ(url_problem("https://api.openai.com/v1"), "");
  EXPECT_EQ(url_problem("http://127.0.0.1:8080/v1"), "");
  EXPECT_EQ(url_problem("http://[::1]:8080/v1"), "");
  EXPECT_NE(url_problem("ftp//not a url").find("space"), std::string::npos);
  EXPECT_NE(url_problem("ftp//nota.url").find("no scheme"), std::string::npos);
  EXPECT_NE(url_problem("ftp://host/x").find("'ftp'"), std::string::npos);
  EXPECT_NE(url_problem("http:///v1").find("no host"), std::string::npos);
  EXPECT_NE(url_problem("http://host:99999/v1").find("port"), std::string::npos);
  EXPECT_NE(url_problem("").find("empty"), std::string::npos);
  // Credentials in the authority are not a port, and never reach a message.
  EXPECT_EQ(url_problem("https://user:sk-zzzSECRETzzz@example.com/v1"), "");
  EXPECT_EQ(url_without_credentials("https://user:sk-zzzSECRETzzz@example.com/v1"), "https://***@example.com/v1");
  EXPECT_EQ(url_without_credentials("https://example.com/v1?a=b@c"), "https://example.com/v1?a=b@c");
}

}  // namespace
}  // namespace bkd

#pragma once
// A loopback HTTP server for tests that plays a script of replies per path (status, headers, body,
// delay), so clients can be tested against 429s with retry hints, 5xx, 529, timeouts, truncated or
// malformed JSON. It records every request it saw. Test code only.
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bkd::testing {

struct ScriptedReply {
  int status = 200;
  std::string body;
  std::multimap<std::string, std::string> headers;
  int delay_ms = 0;
  std::string content_type = "application/json";
};

struct SeenRequest {
  std::string method, path, body;
  std::multimap<std::string, std::string> headers;
};

class FaultServer {
 public:
  using Handler = std::function<ScriptedReply(const SeenRequest&)>;

  FaultServer() {
    auto handle = [this](const httplib::Request& req, httplib::Response& res) {
      SeenRequest seen{req.method, req.path, req.body, {}};
      for (const auto& [k, v] : req.headers) seen.headers.emplace(k, v);
      ScriptedReply reply;
      bool use_fallback = false;
      {
        std::lock_guard<std::mutex> lock(mu_);
        seen_.push_back(seen);
        auto& q = script_[req.path];
        if (!q.empty()) {
          reply = q.front();
          if (q.size() > 1 || !sticky_) q.pop_front();
        } else if (fallback_) {
          use_fallback = true;  // computed below, outside the lock
        } else {
          reply = {404, R"({"error":{"message":"no scripted reply for )" + req.path + R"("}})"};
        }
      }
      if (use_fallback) reply = fallback_(seen);
      int now = ++active_;
      int prev = max_active_.load();
      while (now > prev && !max_active_.compare_exchange_weak(prev, now)) {}
      if (reply.delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(reply.delay_ms));
      --active_;
      res.status = reply.status;
      for (const auto& [k, v] : reply.headers) res.set_header(k, v);
      res.set_content(reply.body, reply.content_type.c_str());
    };
    server_.Get(".*", handle);
    server_.Post(".*", handle);
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FaultServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  // Replies for `path`, played in order; the last one repeats when `sticky` (default).
  void script(const std::string& path, std::vector<ScriptedReply> replies) {
    std::lock_guard<std::mutex> lock(mu_);
    script_[path] = std::deque<ScriptedReply>(replies.begin(), replies.end());
  }
  void set_sticky(bool s) { sticky_ = s; }
  // Computes a reply when no script is queued for the path.
  void set_fallback(Handler h) { fallback_ = std::move(h); }

  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int port() const { return port_; }
  std::vector<SeenRequest> seen() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }
  size_t hits() const { return seen().size(); }
  int max_concurrent() const { return max_active_.load(); }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable std::mutex mu_;
  std::map<std::string, std::deque<ScriptedReply>> script_;
  std::vector<SeenRequest> seen_;
  Handler fallback_;
  bool sticky_ = true;
  std::atomic<int> active_{0}, max_active_{0};
};

}  // namespace bkd::testing

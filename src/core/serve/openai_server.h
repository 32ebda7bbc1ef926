#pragma once
// An OpenAI-compatible HTTP server (cpp-httplib) in front of a teacher provider — normally the
// local model: /v1/models, /v1/chat/completions and /v1/completions with logprobs/top_logprobs
// (<= 20) and usage. Optional bearer key, limits on body size and max_tokens, concurrent requests
// (model calls themselves are serialized by the provider), errors in OpenAI's error shape.
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace httplib {
class Server;
struct Response;
}

namespace bkd {
class Provider;
struct GenerateRequest;

struct ServeOptions {
  std::string host = "127.0.0.1";
  int port = 0;                 // 0: any free port (tests)
  std::string api_key;          // empty: no authentication
  int max_tokens = 1024;        // largest max_tokens a request may ask for
  size_t max_body_bytes = 1 << 20;
  int max_top_logprobs = 20;
};

class OpenAiServer {
 public:
  OpenAiServer(std::shared_ptr<Provider> provider, ServeOptions opts);
  ~OpenAiServer();
  OpenAiServer(const OpenAiServer&) = delete;
  OpenAiServer& operator=(const OpenAiServer&) = delete;

  // Binds and serves on a background thread; returns the bound port. Throws bkd::Error when the
  // address cannot be bound.
  int start();
  void wait();  // until stop()
  void stop();
  int port() const { return port_; }
  std::string base_url() const;  // http://host:port/v1

 private:
  void routes();
  void stream_chat(httplib::Response& res, const GenerateRequest& g, bool want_logprobs, int top, bool include_usage);
  std::shared_ptr<Provider> provider_;
  ServeOptions opts_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// The OpenAI error body: {"error": {"message", "type", "param", "code"}}.
nlohmann::json openai_error(const std::string& message, const std::string& type, const std::string& code = "",
                            const std::string& param = "");

}  // namespace bkd

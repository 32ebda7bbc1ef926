#include "core/serve/openai_server.h"

#include <httplib.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>

#include "core/teacher/provider.h"
#include "core/teacher/token_text.h"
#include "core/util/error.h"
#include "core/util/log.h"

namespace bkd {
namespace {
using nlohmann::json;

// A request problem the client can fix: HTTP status + OpenAI error fields.
struct ApiError {
  ApiError(int s, std::string m, std::string t, std::string c = {}, std::string p = {})
      : status(s), message(std::move(m)), type(std::move(t)), code(std::move(c)), param(std::move(p)) {}
  int status;
  std::string message, type, code, param;
};

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_json(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) {
  send_json(res, e.status, openai_error(e.message, e.type, e.code, e.param));
}

bool constant_time_equal(const std::string& a, const std::string& b) {
  if (a.size() != b.size() || b.empty()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

json parse_body(const httplib::Request& req) {
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw ApiError{400, "We could not parse the JSON body of your request.", "invalid_request_error", "invalid_json"};
  return j;
}

// The credentials of "Authorization: Bearer <token>"; the scheme name is case-insensitive (RFC 7235
// section 2.1) and may be followed by more than one space.
std::optional<std::string> bearer_token(const std::string& header) {
  const size_t sp = header.find(' ');
  if (sp == std::string::npos) return std::nullopt;
  std::string scheme = header.substr(0, sp);
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer") return std::nullopt;
  const size_t start = header.find_first_not_of(' ', sp);
  if (start == std::string::npos) return std::nullopt;
  return header.substr(start);
}

// "seed": any integer, as OpenAI takes it (negative seeds too); used as its 64-bit pattern.
uint64_t seed_field(const json& j) {
  if (!j.contains("seed") || j["seed"].is_null()) return 0;
  const json& v = j["seed"];
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) return static_cast<uint64_t>(v.get<int64_t>());
  throw ApiError{400, "'seed' must be an integer", "invalid_request_error", "invalid_type", "seed"};
}

int int_field(const json& j, const char* name, int dflt, int lo, int hi) {
  if (!j.contains(name) || j[name].is_null()) return dflt;
  if (!j[name].is_number_integer())
    throw ApiError{400, std::string("'") + name + "' must be an integer", "invalid_request_error", "invalid_type", name};
  int64_t v = j[name].get<int64_t>();
  if (v < lo || v > hi)
    throw ApiError{400, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                            ", got " + std::to_string(v),
                   "invalid_request_error", "invalid_value", name};
  return static_cast<int>(v);
}

double temperature_field(const json& j) {
  if (!j.contains("temperature") || j["temperature"].is_null()) return 1.0;  // OpenAI's default
  if (!j["temperature"].is_number())
    throw ApiError{400, "'temperature' must be a number", "invalid_request_error", "invalid_type", "temperature"};
  double t = j["temperature"].get<double>();
  if (t < 0 || t > 2)
    throw ApiError{400, "'temperature' must be between 0 and 2", "invalid_request_error", "invalid_value", "temperature"};
  return t;
}

json candidate_json(const TokenCandidate& c) {
  json j = {{"token", c.text}, {"logprob", std::isnan(c.logprob) ? -9999.0 : c.logprob}, {"bytes", bytes_to_ints(c.bytes)}};
  if (c.id >= 0) j["id"] = c.id;  // llama.cpp-style extension: the teacher vocabulary id
  return j;
}

json token_logprob_json(const GeneratedToken& t, int top) {
  json e = candidate_json(t);
  json alts = json::array();
  for (size_t k = 0; k < t.top.size() && static_cast<int>(k) < top; ++k) alts.push_back(candidate_json(t.top[k]));
  e["top_logprobs"] = alts;
  return e;
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens}, {"completion_tokens", u.completion_tokens}, {"total_tokens", u.total_tokens}};
}

std::string new_id(const char* prefix) {
  static std::atomic<uint64_t> counter{0};
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s-%lx%06llx", prefix, static_cast<long>(std::time(nullptr)),
                static_cast<unsigned long long>(++counter));
  return buf;
}

std::string prompt_from_messages(const json& messages) {
  if (!messages.is_array() || messages.empty())
    throw ApiError{400, "'messages' must be a non-empty array", "invalid_request_error", "invalid_value", "messages"};
  // A base language model has no chat template: the prompt is the messages' text, in order. System
  // (and developer) messages instruct chat models; a base model continues text, so they are not part
  // of it (a teacher asked to continue a text sends the text as the user message).
  std::string prompt;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    if (!m.is_object() || !m.contains("content"))
      throw ApiError{400, "messages[" + std::to_string(i) + "] needs a 'content'", "invalid_request_error",
                     "invalid_value", "messages"};
    const std::string role = m.contains("role") && m["role"].is_string() ? m["role"].get<std::string>() : "user";
    if (role == "system" || role == "developer") continue;
    std::string text;
    if (m["content"].is_string()) {
      text = m["content"].get<std::string>();
    } else if (m["content"].is_array()) {
      for (const auto& part : m["content"])
        if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string())
          text += part["text"].get<std::string>();
    } else {
      throw ApiError{400, "messages[" + std::to_string(i) + "].content must be a string", "invalid_request_error",
                     "invalid_type", "messages"};
    }
    if (!prompt.empty()) prompt += "\n";
    prompt += text;
  }
  if (prompt.empty())
    throw ApiError{400, "'messages' holds no user or assistant text to continue", "invalid_request_error", "invalid_value",
                   "messages"};
  return prompt;
}

}  // namespace

json openai_error(const std::string& message, const std::string& type, const std::string& code,
                  const std::string& param) {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json() : json(param)},
            {"code", code.empty() ? json() : json(code)}}}};
}

OpenAiServer::OpenAiServer(std::shared_ptr<Provider> provider, ServeOptions opts)
    : provider_(std::move(provider)), opts_(std::move(opts)), server_(std::make_unique<httplib::Server>()) {
  if (!opts_.api_key.empty()) register_secret(opts_.api_key);
  routes();
}

OpenAiServer::~OpenAiServer() { stop(); }

std::string OpenAiServer::base_url() const {
  const std::string h = opts_.host.find(':') != std::string::npos ? "[" + opts_.host + "]" : opts_.host;
  return "http://" + (h == "0.0.0.0" ? std::string("127.0.0.1") : h) + ":" + std::to_string(port_) + "/v1";
}

void OpenAiServer::routes() {
  httplib::Server& s = *server_;
  s.set_payload_max_length(opts_.max_body_bytes);
  s.set_read_timeout(30, 0);
  s.set_write_timeout(30, 0);

  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (opts_.api_key.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    if (const auto key = bearer_token(auth); key && constant_time_equal(*key, opts_.api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    send_error(res, {401, auth.empty() ? "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
                                       : "Incorrect API key provided.",
                     "invalid_request_error", "invalid_api_key"});
    return httplib::Server::HandlerResponse::Handled;
  });

  // Anything that ends in an error without a body (unknown route, body too large) gets one.
  s.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404)
      send_error(res, {404, "Unknown request URL: " + req.method + " " + req.path, "invalid_request_error", "unknown_url"});
    else if (res.status == 413)
      send_error(res, {413, "Request body larger than " + std::to_string(opts_.max_body_bytes) + " bytes",
                       "invalid_request_error", "request_too_large"});
    else
      send_error(res, {res.status, "HTTP " + std::to_string(res.status), "invalid_request_error"});
    return httplib::Server::HandlerResponse::Handled;
  }));

  s.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      if (ep) std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      msg = redact(e.what());
    } catch (...) {
    }
    log_warn("serve: " + msg);
    send_error(res, {500, msg, "server_error"});
  });

  auto model_json = [this] {
    return json{{"id", provider_->model()}, {"object", "model"}, {"created", 0}, {"owned_by", "bitnet-kde"}};
  };
  s.Get("/v1/models", [model_json](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, {{"object", "list"}, {"data", json::array({model_json()})}});
  });
  s.Get(R"(/v1/models/(.+))", [this, model_json](const httplib::Request& req, httplib::Response& res) {
    if (req.matches[1] != provider_->model())
      return send_error(res, {404, "The model '" + std::string(req.matches[1]) + "' does not exist",
                              "invalid_request_error", "model_not_found", "model"});
    send_json(res, 200, model_json());
  });

  // Shared request checks; returns the GenerateRequest and whether logprobs were asked for.
  auto common = [this](const json& body, bool chat, bool& want_logprobs, int& top) {
    if (!body.contains("model") || !body["model"].is_string())
      throw ApiError{400, "you must provide a model parameter", "invalid_request_error", "missing_model", "model"};
    if (body["model"].get<std::string>() != provider_->model())
      throw ApiError{404, "The model '" + body["model"].get<std::string>() + "' does not exist (this server has '" +
                              provider_->model() + "')",
                     "invalid_request_error", "model_not_found", "model"};
    if (body.contains("stream") && !body["stream"].is_null() && !body["stream"].is_boolean())
      throw ApiError{400, "'stream' must be a boolean", "invalid_request_error", "invalid_type", "stream"};
    if (!chat && body.value("stream", false))
      throw ApiError{400, "stream=true is only supported on /v1/chat/completions", "invalid_request_error",
                     "unsupported_value", "stream"};
    int_field(body, "n", 1, 1, 1);  // one choice per request
    GenerateRequest g;
    const char* mt = chat && body.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    g.max_tokens = int_field(body, mt, std::min(16, opts_.max_tokens), 1, opts_.max_tokens);
    g.temperature = temperature_field(body);
    g.seed = seed_field(body);
    if (chat) {
      if (body.contains("logprobs") && !body["logprobs"].is_null() && !body["logprobs"].is_boolean())
        throw ApiError{400, "'logprobs' must be a boolean", "invalid_request_error", "invalid_type", "logprobs"};
      want_logprobs = body.value("logprobs", false);
      top = int_field(body, "top_logprobs", 0, 0, opts_.max_top_logprobs);
      if (top > 0 && !want_logprobs)
        throw ApiError{400, "when using 'top_logprobs', 'logprobs' must be set to true", "invalid_request_error",
                       "invalid_value", "top_logprobs"};
    } else {
      top = int_field(body, "logprobs", -1, 0, opts_.max_top_logprobs);
      want_logprobs = top >= 0;
      top = std::max(top, 0);
      if (body.value("echo", false))
        throw ApiError{400, "echo=true is not supported by this server", "invalid_request_error", "unsupported_value", "echo"};
    }
    g.top_k = top;
    g.use_cache = false;
    return g;
  };

  s.Post("/v1/chat/completions", [this, common](const httplib::Request& req, httplib::Response& res) {
    try {
      json body = parse_body(req);
      bool want = false;
      int top = 0;
      GenerateRequest g = common(body, true, want, top);
      g.prompt = prompt_from_messages(body.value("messages", json()));
      if (body.value("stream", false)) {
        const bool include_usage = body.contains("stream_options") && body["stream_options"].is_object() &&
                                   body["stream_options"].value("include_usage", false);
        stream_chat(res, g, want, top, include_usage);
        return;
      }
      Generation gen = provider_->generate(g);
      json choice = {{"index", 0},
                     {"message", {{"role", "assistant"}, {"content", gen.text}}},
                     {"logprobs", nullptr},
                     {"finish_reason", gen.finish_reason}};
      if (want) {
        json content = json::array();
        for (const auto& t : gen.tokens) content.push_back(token_logprob_json(t, top));
        choice["logprobs"] = {{"content", content}, {"refusal", nullptr}};
      }
      send_json(res, 200,
                {{"id", new_id("chatcmpl")}, {"object", "chat.completion"}, {"created", std::time(nullptr)},
                 {"model", provider_->model()}, {"system_fingerprint", "bitnet-kde"},
                 {"choices", json::array({choice})}, {"usage", usage_json(gen.usage)}});
    } catch (const ApiError& e) {
      send_error(res, e);
    }
  });

  s.Post("/v1/completions", [this, common](const httplib::Request& req, httplib::Response& res) {
    try {
      json body = parse_body(req);
      bool want = false;
      int top = 0;
      GenerateRequest g = common(body, false, want, top);
      const json& p = body.contains("prompt") ? body["prompt"] : json();
      if (p.is_string()) g.prompt = p.get<std::string>();
      else if (p.is_array() && p.size() == 1 && p[0].is_string()) g.prompt = p[0].get<std::string>();
      else throw ApiError{400, "'prompt' must be a string (one prompt per request)", "invalid_request_error", "invalid_value", "prompt"};
      // vLLM's teacher-forced scoring extension: prompt_logprobs (+ prompt_token_ids).
      const int prompt_top = int_field(body, "prompt_logprobs", -1, 0, opts_.max_top_logprobs);
      Scoring scored;
      if (prompt_top >= 0) scored = provider_->score(g.prompt, prompt_top);
      Generation gen = provider_->generate(g);
      json choice = {{"index", 0}, {"text", gen.text}, {"logprobs", nullptr}, {"finish_reason", gen.finish_reason}};
      if (prompt_top >= 0) {
        json plp = json::array(), ids = json::array();
        for (size_t i = 0; i < scored.tokens.size(); ++i) {
          const GeneratedToken& t = scored.tokens[i];
          ids.push_back(t.id);
          if (i == 0) {
            plp.push_back(nullptr);  // nothing predicts the first token
            continue;
          }
          json m = json::object();
          for (size_t k = 0; k < t.top.size(); ++k)
            m[std::to_string(t.top[k].id)] = {{"logprob", t.top[k].logprob}, {"rank", k + 1}, {"decoded_token", t.top[k].text}};
          m[std::to_string(t.id)] = {{"logprob", std::isnan(t.logprob) ? -9999.0 : t.logprob},
                                     {"rank", t.rank > 0 ? json(t.rank) : json()},
                                     {"decoded_token", t.text}};
          plp.push_back(m);
        }
        choice["prompt_logprobs"] = plp;
        choice["prompt_token_ids"] = ids;
      }
      if (want) {
        json tokens = json::array(), lps = json::array(), tops = json::array(), offsets = json::array();
        size_t offset = 0;
        for (const auto& t : gen.tokens) {
          tokens.push_back(t.text);
          lps.push_back(std::isnan(t.logprob) ? -9999.0 : t.logprob);
          json alt = json::object();
          for (size_t k = 0; k < t.top.size() && static_cast<int>(k) < top; ++k) alt[t.top[k].text] = t.top[k].logprob;
          tops.push_back(alt);
          offsets.push_back(offset);
          offset += t.bytes.size();
        }
        choice["logprobs"] = {{"tokens", tokens}, {"token_logprobs", lps}, {"top_logprobs", tops}, {"text_offset", offsets}};
      }
      send_json(res, 200,
                {{"id", new_id("cmpl")}, {"object", "text_completion"}, {"created", std::time(nullptr)},
                 {"model", provider_->model()}, {"choices", json::array({choice})}, {"usage", usage_json(gen.usage)}});
    } catch (const ApiError& e) {
      send_error(res, e);
    }
  });
}

void OpenAiServer::stream_chat(httplib::Response& res, const GenerateRequest& g, bool want_logprobs, int top,
                               bool include_usage) {
  auto provider = provider_;
  const std::string id = new_id("chatcmpl");
  const std::string model = provider_->model();
  const auto created = std::time(nullptr);
  res.set_chunked_content_provider("text/event-stream", [=](size_t, httplib::DataSink& sink) {
    auto chunk = [&](const json& delta, const json& logprobs, const json& finish) {
      json c = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
                {"system_fingerprint", "bitnet-kde"},
                {"choices", json::array({{{"index", 0}, {"delta", delta}, {"logprobs", logprobs}, {"finish_reason", finish}}})}};
      const std::string line = "data: " + dump(c) + "\n\n";
      return sink.write(line.data(), line.size());
    };
    try {
      chunk({{"role", "assistant"}, {"content", ""}}, nullptr, nullptr);
      GenerateRequest req = g;
      // Tokens go out as they are chosen, so the client sees the first one early.
      req.on_token = [&](const GeneratedToken& t) {
        chunk({{"content", t.bytes}}, want_logprobs ? json{{"content", json::array({token_logprob_json(t, top)})}} : json(),
              nullptr);
      };
      Generation gen = provider->generate(req);
      chunk(json::object(), nullptr, gen.finish_reason);
      if (include_usage) {
        json u = {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
                  {"choices", json::array()}, {"usage", usage_json(gen.usage)}};
        const std::string line = "data: " + dump(u) + "\n\n";
        sink.write(line.data(), line.size());
      }
    } catch (const std::exception& e) {
      const std::string line = "data: " + dump(openai_error(redact(e.what()), "server_error")) + "\n\n";
      sink.write(line.data(), line.size());
    }
    const std::string done = "data: [DONE]\n\n";
    sink.write(done.data(), done.size());
    sink.done();
    return true;
  });
}

int OpenAiServer::start() {
  if (opts_.port == 0) {
    port_ = server_->bind_to_any_port(opts_.host);
    if (port_ <= 0) throw Error("serve: cannot bind " + opts_.host + " to any port");
  } else {
    if (!server_->bind_to_port(opts_.host, opts_.port))
      throw Error("serve: cannot bind " + opts_.host + ":" + std::to_string(opts_.port),
                  "is another server on that port? choose another SERVE_PORT");
    port_ = opts_.port;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return port_;
}

void OpenAiServer::wait() {
  if (thread_.joinable()) thread_.join();
}

void OpenAiServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace bkd

#include "core/teacher/anthropic_provider.h"

#include "core/http/url.h"
#include "core/teacher/token_text.h"
#include "core/util/error.h"
#include "core/util/log.h"

namespace bkd {
using nlohmann::json;

json build_anthropic_request(const std::string& model, const GenerateRequest& req) {
  json body = {{"model", model},
               {"max_tokens", req.max_tokens},
               {"temperature", req.temperature},
               {"messages", json::array({{{"role", "user"}, {"content", req.prompt}}})}};
  if (!req.instruction.empty()) body["system"] = req.instruction;
  return body;
}

Generation parse_anthropic_response(const json& reply) {
  if (!reply.is_object() || !reply.contains("content") || !reply["content"].is_array())
    throw Error("Anthropic reply has no `content` array");
  Generation g;
  for (const auto& block : reply["content"])
    if (block.is_object() && block.value("type", std::string()) == "text" && block.contains("text") &&
        block["text"].is_string())
      g.text += block["text"].get<std::string>();
  g.finish_reason = reply.contains("stop_reason") && reply["stop_reason"].is_string() ? reply["stop_reason"].get<std::string>() : "";
  if (reply.contains("usage") && reply["usage"].is_object()) {
    const json& u = reply["usage"];
    auto num = [&](const char* k) { return u.contains(k) && u[k].is_number() ? u[k].get<int64_t>() : int64_t{0}; };
    g.usage.prompt_tokens = num("input_tokens") + num("cache_read_input_tokens") + num("cache_creation_input_tokens");
    g.usage.completion_tokens = num("output_tokens");
    g.usage.total_tokens = g.usage.prompt_tokens + g.usage.completion_tokens;
  }
  return g;
}

AnthropicProvider::AnthropicProvider(std::string base_url, std::string api_key, std::string model, ProviderContext ctx)
    : base_url_(std::move(base_url)), api_key_(std::move(api_key)), model_(std::move(model)), ctx_(std::move(ctx)) {
  register_secret(api_key_);
}

Capabilities AnthropicProvider::capabilities() {
  Capabilities c;
  c.source = "static";
  c.note = "the Anthropic Messages API returns no logprobs (text-only teacher)";
  return c;
}

Generation AnthropicProvider::generate(const GenerateRequest& req) {
  if (!is_valid_utf8(req.prompt))
    throw UsageError(std::string("anthropic") + ": the prompt is not valid UTF-8; JSON APIs cannot carry it");
  if (req.top_k > 0) require_logprobs(*this, "top-K collection");
  HttpRequest hr;
  hr.url = join_url(base_url_, "messages");
  hr.body = build_anthropic_request(model_, req).dump();
  hr.headers = {{"x-api-key", api_key_}, {"anthropic-version", "2023-06-01"}};
  hr.use_cache = req.use_cache;
  hr.token_estimate = static_cast<double>(req.prompt.size()) / 4.0 + req.max_tokens;
  hr.validate = [](const std::string& b) { return require_json_field(b, "content"); };
  HttpResponse resp = ctx_.http->send(hr);
  if (!resp.ok()) throw_provider_error("anthropic", model_, "ANTHROPIC_API_KEY", hr, resp);
  Generation g;
  try {
    g = parse_anthropic_response(json::parse(resp.body));
  } catch (const Error& e) {
    throw Error("anthropic (" + url_for_display(hr.url) + "): " + e.what(), e.hint());
  }
  copy_response_timing(resp, g);
  return g;
}

}  // namespace bkd

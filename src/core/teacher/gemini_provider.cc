#include "core/teacher/gemini_provider.h"

#include "core/http/url.h"
#include "core/teacher/token_text.h"
#include "core/util/error.h"
#include "core/util/log.h"
#include "core/util/sysinfo.h"

namespace bkd {
namespace {
using nlohmann::json;

TokenCandidate parse_gemini_candidate(const json& e) {
  TokenCandidate c;
  if (!e.is_object()) throw Error("malformed Gemini logprobs candidate: not an object");
  c.text = e.contains("token") && e["token"].is_string() ? e["token"].get<std::string>() : "";
  c.bytes = c.text;
  c.id = e.contains("tokenId") && e["tokenId"].is_number_integer() ? e["tokenId"].get<int32_t>() : 0;
  c.logprob = e.contains("logProbability") && e["logProbability"].is_number() ? e["logProbability"].get<double>() : 0.0;
  return c;
}
}  // namespace

json build_gemini_request(const GenerateRequest& req) {
  json gen = {{"maxOutputTokens", req.max_tokens}, {"temperature", req.temperature}, {"seed", req.seed}};
  if (req.top_k > 0) {
    gen["responseLogprobs"] = true;
    gen["logprobs"] = req.top_k;
  }
  json body = {{"contents", json::array({{{"role", "user"}, {"parts", json::array({{{"text", req.prompt}}})}}})},
               {"generationConfig", gen}};
  if (!req.instruction.empty()) body["systemInstruction"] = {{"parts", json::array({{{"text", req.instruction}}})}};
  return body;
}

Generation parse_gemini_response(const json& reply, bool want_logprobs) {
  if (!reply.is_object()) throw Error("Gemini reply is not a JSON object");
  if (!reply.contains("candidates") || !reply["candidates"].is_array() || reply["candidates"].empty()) {
    std::string why;
    if (reply.contains("promptFeedback")) why = " (promptFeedback: " + reply["promptFeedback"].dump() + ")";
    throw Error("Gemini reply has no `candidates`" + why);
  }
  const json& cand = reply["candidates"][0];
  Generation g;
  g.finish_reason = cand.value("finishReason", std::string());
  std::string content;
  if (cand.contains("content") && cand["content"].is_object() && cand["content"].contains("parts") &&
      cand["content"]["parts"].is_array())
    for (const auto& p : cand["content"]["parts"])
      if (p.is_object() && p.contains("text") && p["text"].is_string()) content += p["text"].get<std::string>();

  const json* lr = cand.contains("logprobsResult") && cand["logprobsResult"].is_object() ? &cand["logprobsResult"] : nullptr;
  if (want_logprobs && !lr)
    throw Error("the Gemini reply carries no `logprobsResult` although logprobs were requested",
                "this model does not give logprobs; choose another TEACHER_MODEL");
  if (lr) {
    const json chosen = lr->value("chosenCandidates", json::array());
    const json tops = lr->value("topCandidates", json::array());
    for (size_t i = 0; i < chosen.size(); ++i) {
      GeneratedToken t;
      static_cast<TokenCandidate&>(t) = parse_gemini_candidate(chosen[i]);
      if (i < tops.size() && tops[i].is_object() && tops[i].contains("candidates") && tops[i]["candidates"].is_array())
        for (const auto& c : tops[i]["candidates"]) t.top.push_back(parse_gemini_candidate(c));
      g.tokens.push_back(std::move(t));
    }
    fill_log_other_from_topk(g.tokens);
  }
  g.text = content;
  if (reply.contains("usageMetadata") && reply["usageMetadata"].is_object()) {
    const json& u = reply["usageMetadata"];
    auto num = [&](const char* k) { return u.contains(k) && u[k].is_number() ? u[k].get<int64_t>() : int64_t{0}; };
    g.usage.prompt_tokens = num("promptTokenCount");
    g.usage.completion_tokens = num("candidatesTokenCount") + num("thoughtsTokenCount");
    g.usage.total_tokens = num("totalTokenCount");
  }
  if (g.usage.completion_tokens == 0) g.usage.completion_tokens = static_cast<int64_t>(g.tokens.size());
  if (g.usage.total_tokens == 0) g.usage.total_tokens = g.usage.prompt_tokens + g.usage.completion_tokens;
  return g;
}

GeminiProvider::GeminiProvider(std::string base_url, std::string api_key, std::string model, ProviderContext ctx)
    : base_url_(std::move(base_url)), api_key_(std::move(api_key)), model_(std::move(model)), ctx_(std::move(ctx)) {
  register_secret(api_key_);
}

HttpRequest GeminiProvider::make_request(const json& body, bool use_cache) const {
  HttpRequest r;
  // The key goes in a header (x-goog-api-key), never in the URL's ?key= where logs would see it.
  std::string m = model_.rfind("models/", 0) == 0 ? model_ : "models/" + model_;
  r.url = join_url(base_url_, m + ":generateContent");
  r.body = body.dump();
  r.headers.push_back({"x-goog-api-key", api_key_});
  r.use_cache = use_cache;
  r.validate = [](const std::string& b) { return require_json_field(b, "candidates"); };
  return r;
}

Capabilities GeminiProvider::capabilities() {
  std::lock_guard<std::mutex> lock(mu_);
  if (caps_) return *caps_;
  CapabilityStore store(ctx_.capability_dir);
  if (auto cached = store.load("gemini", base_url_, model_)) return *(caps_ = cached);
  Capabilities c;
  c.source = "probe";
  c.probed_at = iso8601_utc_now();
  GenerateRequest probe;
  probe.prompt = "Hello";
  probe.max_tokens = 1;
  probe.top_k = 20;
  HttpRequest hr = make_request(build_gemini_request(probe), false);
  HttpResponse resp = ctx_.http->send(hr);
  if (resp.ok()) {
    try {
      Generation g = parse_gemini_response(json::parse(resp.body), true);
      c.logprobs = true;
      c.max_top_k = 20;
      c.token_ids = true;
    } catch (const std::exception& e) {
      c.note = e.what();
    }
  } else if ((resp.status == 400 || resp.status == 403) && message_rejects_logprobs(http_error_message(resp.body))) {
    c.note = "HTTP " + std::to_string(resp.status) + ": " + http_error_message(resp.body);
  } else {
    throw_provider_error("gemini", model_, "GEMINI_API_KEY", hr, resp);
  }
  store.save("gemini", base_url_, model_, c);
  caps_ = c;
  return c;
}

Generation GeminiProvider::generate(const GenerateRequest& req) {
  if (!is_valid_utf8(req.prompt))
    throw UsageError(std::string("gemini") + ": the prompt is not valid UTF-8; JSON APIs cannot carry it");
  if (req.top_k > 0) {
    Capabilities c = capabilities();
    if (!c.logprobs) require_logprobs(*this, "top-K collection");
  }
  HttpRequest hr = make_request(build_gemini_request(req), req.use_cache);
  hr.token_estimate = static_cast<double>(req.prompt.size()) / 4.0 + req.max_tokens;
  HttpResponse resp = ctx_.http->send(hr);
  if (!resp.ok()) throw_provider_error("gemini", model_, "GEMINI_API_KEY", hr, resp);
  Generation g;
  try {
    g = parse_gemini_response(json::parse(resp.body), req.top_k > 0);
  } catch (const Error& e) {
    throw Error("gemini (" + url_for_display(hr.url) + "): " + e.what(), e.hint());
  }
  copy_response_timing(resp, g);
  return g;
}

}  // namespace bkd

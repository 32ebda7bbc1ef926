#include "core/teacher/openai_chat.h"

#include <algorithm>
#include <cmath>

#include "core/http/url.h"
#include "core/teacher/logprob_math.h"
#include "core/teacher/token_text.h"
#include "core/util/error.h"
#include "core/util/log.h"
#include "core/util/sysinfo.h"

namespace bkd {
namespace {

using nlohmann::json;

// One {token, logprob, bytes, top_logprobs?, id?} entry.
TokenCandidate parse_candidate(const json& e, const std::string& where) {
  if (!e.is_object()) throw Error("malformed logprobs entry at " + where + ": not an object");
  TokenCandidate c;
  const bool has_token = e.contains("token") && e["token"].is_string();
  const bool has_bytes = e.contains("bytes") && e["bytes"].is_array();
  if (!has_token && !has_bytes) throw Error("malformed logprobs entry at " + where + ": neither `token` nor `bytes`");
  if (has_token) c.text = e["token"].get<std::string>();
  c.bytes = has_bytes ? bytes_from_json_array(e["bytes"]) : bytes_from_display_text(c.text);
  if (!has_token) c.text = token_display_text(c.bytes);
  if (e.contains("logprob") && e["logprob"].is_number()) {
    double lp = e["logprob"].get<double>();
    c.logprob = is_missing_logprob(lp) ? kMissingLogprob : lp;
  }
  if (e.contains("id") && e["id"].is_number_integer()) c.id = e["id"].get<int32_t>();
  if (c.id < 0 && c.text.rfind("token_id:", 0) == 0) {  // vLLM return_tokens_as_token_ids
    try {
      c.id = std::stoi(c.text.substr(9));
    } catch (...) {
    }
  }
  return c;
}

}  // namespace

json build_chat_request(const std::string& model, const GenerateRequest& req, const std::string& max_tokens_field) {
  json messages = json::array();
  if (!req.instruction.empty()) messages.push_back({{"role", "system"}, {"content", req.instruction}});
  messages.push_back({{"role", "user"}, {"content", req.prompt}});
  json body = {{"model", model},
               {"messages", messages},
               {max_tokens_field, req.max_tokens},
               {"temperature", req.temperature},
               {"seed", req.seed},
               {"n", 1},
               {"stream", false}};
  if (req.top_k > 0) {
    body["logprobs"] = true;
    body["top_logprobs"] = req.top_k;
  }
  return body;
}

Generation parse_chat_response(const json& reply, bool want_logprobs) {
  if (!reply.is_object()) throw Error("chat completion reply is not a JSON object");
  if (!reply.contains("choices") || !reply["choices"].is_array() || reply["choices"].empty())
    throw Error("chat completion reply has no `choices`");
  const json& choice = reply["choices"][0];
  if (!choice.is_object()) throw Error("chat completion `choices[0]` is not an object");
  Generation g;
  g.finish_reason = choice.value("finish_reason", json()).is_string() ? choice["finish_reason"].get<std::string>() : "";
  std::string content;
  if (choice.contains("message") && choice["message"].is_object() && choice["message"].contains("content") &&
      choice["message"]["content"].is_string())
    content = choice["message"]["content"].get<std::string>();
  else if (choice.contains("text") && choice["text"].is_string())
    content = choice["text"].get<std::string>();

  const json* lp_content = nullptr;
  if (choice.contains("logprobs") && !choice["logprobs"].is_null()) {
    const json& lp = choice["logprobs"];
    // Present but not in the documented shape: a malformed reply, not a model without logprobs.
    if (!lp.is_object() || (lp.contains("content") && !lp["content"].is_array() && !lp["content"].is_null()))
      throw Error("malformed reply: `choices[0].logprobs` is not {\"content\": [...]}",
                  "the server sent a reply that does not follow the chat completions format; it is retried and never cached");
    if (lp.contains("content") && lp["content"].is_array()) lp_content = &lp["content"];
  }
  if (choice.contains("message") && !choice["message"].is_null() && !choice["message"].is_object())
    throw Error("malformed reply: `choices[0].message` is not an object",
                "the server sent a reply that does not follow the chat completions format; it is retried and never cached");
  if (want_logprobs && !lp_content)
    throw Error("the reply carries no logprobs (`choices[0].logprobs` is null or missing) although they were requested",
                "this model does not give logprobs; choose another TEACHER_MODEL or provider");

  bool all_bytes = lp_content != nullptr;
  if (lp_content) {
    for (size_t i = 0; i < lp_content->size(); ++i) {
      const json& e = (*lp_content)[i];
      const std::string where = "choices[0].logprobs.content[" + std::to_string(i) + "]";
      GeneratedToken t;
      static_cast<TokenCandidate&>(t) = parse_candidate(e, where);
      if (!(e.contains("bytes") && e["bytes"].is_array())) all_bytes = false;
      if (e.contains("top_logprobs") && e["top_logprobs"].is_array()) {
        const json& top = e["top_logprobs"];
        for (size_t k = 0; k < top.size(); ++k) {
          TokenCandidate c = parse_candidate(top[k], where + ".top_logprobs[" + std::to_string(k) + "]");
          if (!std::isnan(c.logprob)) t.top.push_back(std::move(c));
        }
      }
      g.tokens.push_back(std::move(t));
    }
    fill_log_other_from_topk(g.tokens);
  }
  // Byte-exact text: tokens can split a UTF-8 character, so concatenate bytes, not strings.
  if (all_bytes && !g.tokens.empty()) {
    for (const auto& t : g.tokens) g.text += t.bytes;
  } else {
    g.text = content;
  }

  if (reply.contains("usage") && reply["usage"].is_object()) {
    const json& u = reply["usage"];
    auto num = [&](const char* k) { return u.contains(k) && u[k].is_number() ? u[k].get<int64_t>() : int64_t{0}; };
    g.usage.prompt_tokens = num("prompt_tokens");
    g.usage.completion_tokens = num("completion_tokens");
    g.usage.total_tokens = num("total_tokens");
  }
  if (g.usage.completion_tokens == 0) g.usage.completion_tokens = static_cast<int64_t>(g.tokens.size());
  if (g.usage.total_tokens == 0) g.usage.total_tokens = g.usage.prompt_tokens + g.usage.completion_tokens;
  if (reply.contains("system_fingerprint") && reply["system_fingerprint"].is_string())
    g.system_fingerprint = reply["system_fingerprint"].get<std::string>();
  return g;
}

namespace {
// Calls fn(payload) for every complete "data:" line.
template <typename F>
void for_each_sse_data(const std::string& sse, F fn) {
  size_t pos = 0;
  while (pos < sse.size()) {
    size_t end = sse.find('\n', pos);
    if (end == std::string::npos) break;  // an incomplete line: not yet
    std::string line = sse.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("data:", 0) != 0) continue;
    size_t b = 5;
    while (b < line.size() && line[b] == ' ') ++b;
    if (!fn(line.substr(b))) return;
  }
}

bool chunk_has_token(const json& c) {
  if (!c.is_object() || !c.contains("choices") || !c["choices"].is_array() || c["choices"].empty()) return false;
  const json& ch = c["choices"][0];
  if (ch.contains("delta") && ch["delta"].is_object() && ch["delta"].contains("content") &&
      ch["delta"]["content"].is_string() && !ch["delta"]["content"].get<std::string>().empty())
    return true;
  return ch.contains("logprobs") && ch["logprobs"].is_object() && ch["logprobs"].contains("content") &&
         ch["logprobs"]["content"].is_array() && !ch["logprobs"]["content"].empty();
}
}  // namespace

json assemble_chat_stream(const std::string& sse) {
  std::string content, finish;
  json lp_content = json::array(), usage, fingerprint;
  bool any_logprobs = false, done = false, any_chunk = false;
  for_each_sse_data(sse, [&](const std::string& payload) {
    if (payload == "[DONE]") {
      done = true;
      return false;
    }
    json c = json::parse(payload, nullptr, false);
    if (c.is_discarded() || !c.is_object()) throw Error("malformed stream event: " + payload.substr(0, 120));
    if (c.contains("error")) throw Error("the stream carried an error: " + http_error_message(payload));
    any_chunk = true;
    if (c.contains("usage") && c["usage"].is_object()) usage = c["usage"];
    if (c.contains("system_fingerprint") && c["system_fingerprint"].is_string()) fingerprint = c["system_fingerprint"];
    if (!c.contains("choices") || !c["choices"].is_array() || c["choices"].empty()) return true;
    const json& ch = c["choices"][0];
    if (ch.contains("delta") && ch["delta"].is_object() && ch["delta"].contains("content") && ch["delta"]["content"].is_string())
      content += ch["delta"]["content"].get<std::string>();
    if (ch.contains("logprobs") && ch["logprobs"].is_object()) {
      any_logprobs = true;
      if (ch["logprobs"].contains("content") && ch["logprobs"]["content"].is_array())
        for (const auto& e : ch["logprobs"]["content"]) lp_content.push_back(e);
    }
    if (ch.contains("finish_reason") && ch["finish_reason"].is_string()) finish = ch["finish_reason"];
    return true;
  });
  if (!done) throw Error("the stream ended before `data: [DONE]` (truncated)");
  if (!any_chunk) throw Error("the stream held no chunks");
  json choice = {{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", content}}},
                 {"logprobs", any_logprobs ? json{{"content", lp_content}} : json()},
                 {"finish_reason", finish}};
  json reply = {{"choices", json::array({choice})}};
  if (!usage.is_null()) reply["usage"] = usage;
  if (!fingerprint.is_null()) reply["system_fingerprint"] = fingerprint;
  return reply;
}

bool chat_stream_has_token(const std::string& sse) {
  bool found = false;
  for_each_sse_data(sse, [&](const std::string& payload) {
    if (payload == "[DONE]") return false;
    json c = json::parse(payload, nullptr, false);
    found = chunk_has_token(c);
    return !found;
  });
  return found;
}

json build_prompt_logprobs_request(const std::string& model, const std::string& text, int top_k) {
  return {{"model", model},       {"prompt", text},          {"max_tokens", 1},
          {"temperature", 0},     {"prompt_logprobs", top_k}, {"return_token_ids", true}};
}

void fill_unscored_first_token(const std::string& text, Scoring& s) {
  if (s.tokens.empty() || !s.tokens[0].bytes.empty()) return;
  size_t rest = 0;
  for (size_t i = 1; i < s.tokens.size(); ++i) rest += s.tokens[i].bytes.size();
  if (rest >= text.size()) return;  // nothing left for it: the alignment check reports the sequence
  std::string tail;
  tail.reserve(rest);
  for (size_t i = 1; i < s.tokens.size(); ++i) tail += s.tokens[i].bytes;
  if (text.compare(text.size() - rest, rest, tail) != 0) return;
  s.tokens[0].bytes = text.substr(0, text.size() - rest);
  s.tokens[0].text = token_display_text(s.tokens[0].bytes);
}

namespace {
// A candidate's bytes from its id through the server model's tokenizer.
void bytes_from_id(const Tokenizer& tok, TokenCandidate& c) {
  if (c.id < 0 || c.id >= tok.vocab_size())
    throw Error("the server scored token id " + std::to_string(c.id) + ", outside the " + std::to_string(tok.vocab_size()) +
                    " ids of TEACHER_TOKENIZER",
                "TEACHER_TOKENIZER must be the tokenizer of the model the server runs (or unset it)");
  c.bytes = tok.continuation_bytes(c.id);
  c.text = token_display_text(c.bytes);
}
}  // namespace

Scoring parse_prompt_logprobs(const json& reply, int top_k, const Tokenizer* tokenizer) {
  if (!reply.is_object() || !reply.contains("choices") || !reply["choices"].is_array() || reply["choices"].empty())
    throw Error("completion reply has no `choices`");
  const json& c = reply["choices"][0];
  const json* plp = c.contains("prompt_logprobs") && c["prompt_logprobs"].is_array() ? &c["prompt_logprobs"]
                    : reply.contains("prompt_logprobs") && reply["prompt_logprobs"].is_array() ? &reply["prompt_logprobs"]
                                                                                                : nullptr;
  const json* ids = c.contains("prompt_token_ids") && c["prompt_token_ids"].is_array() ? &c["prompt_token_ids"]
                    : reply.contains("prompt_token_ids") && reply["prompt_token_ids"].is_array() ? &reply["prompt_token_ids"]
                                                                                                  : nullptr;
  if (!plp)
    throw Error("the reply carries no `prompt_logprobs`: this server cannot score text",
                "scoring needs vLLM (or `bitnet-kde serve`); other servers can only generate");
  if (!ids || ids->size() != plp->size())
    throw Error("the reply carries no `prompt_token_ids` matching `prompt_logprobs`",
                "vLLM returns them with `return_token_ids: true` (recent versions)");
  Scoring s;
  for (size_t i = 0; i < plp->size(); ++i) {
    GeneratedToken t;
    if (!(*ids)[i].is_number_integer()) throw Error("prompt_token_ids[" + std::to_string(i) + "] is not an integer");
    t.id = (*ids)[i].get<int32_t>();
    const json& m = (*plp)[i];
    if (m.is_object()) {
      std::vector<std::pair<int, TokenCandidate>> entries;  // (rank, candidate)
      for (auto it = m.begin(); it != m.end(); ++it) {
        TokenCandidate cand;
        try {
          cand.id = std::stoi(it.key());
        } catch (...) {
          throw Error("prompt_logprobs[" + std::to_string(i) + "] has a non-numeric key '" + it.key() + "'");
        }
        const json& v = it.value();
        if (v.is_object() && v.contains("logprob") && v["logprob"].is_number()) {
          double lp = v["logprob"].get<double>();
          cand.logprob = is_missing_logprob(lp) ? kMissingLogprob : lp;
        }
        cand.text = v.is_object() && v.contains("decoded_token") && v["decoded_token"].is_string()
                        ? v["decoded_token"].get<std::string>()
                        : "";
        cand.bytes = bytes_from_display_text(cand.text);
        if (tokenizer) bytes_from_id(*tokenizer, cand);
        int rank = v.is_object() && v.contains("rank") && v["rank"].is_number_integer() ? v["rank"].get<int>() : 0;
        if (cand.id == t.id) {
          static_cast<TokenCandidate&>(t) = cand;
          t.rank = rank;
        }
        entries.push_back({rank, cand});
      }
      std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
        return a.second.logprob > b.second.logprob || (a.second.logprob == b.second.logprob && a.second.id < b.second.id);
      });
      for (const auto& [rank, cand] : entries) {
        // vLLM adds the actual token to the top-K; keep it only when it is within the top K.
        if (static_cast<int>(t.top.size()) >= top_k) break;
        if (rank > top_k) continue;
        if (!std::isnan(cand.logprob)) t.top.push_back(cand);
      }
    }
    // An actual token the map leaves out still has its bytes; the first (unscored, maybe a BOS the
    // server added) is left to fill_unscored_first_token.
    if (tokenizer && i > 0 && t.bytes.empty() && t.text.empty()) bytes_from_id(*tokenizer, t);
    s.tokens.push_back(std::move(t));
  }
  fill_log_other_from_topk(s.tokens);
  return s;
}

namespace {
// With a local tokenizer, the scored ids must spell the text after the first token (which may be a
// BOS the server added): a tokenizer of another model would put every row out of line with the text.
void check_ids_spell_text(const std::string& text, const Scoring& s) {
  std::string tail;
  for (size_t i = 1; i < s.tokens.size(); ++i) tail += s.tokens[i].bytes;
  if (tail.size() > text.size() || text.compare(text.size() - tail.size(), tail.size(), tail) != 0)
    throw Error("the server's token ids, decoded with TEACHER_TOKENIZER, do not spell the text that was scored",
                "TEACHER_TOKENIZER must be the tokenizer of the model the server runs (or unset it)");
}
}  // namespace

OpenAiProvider::OpenAiProvider(OpenAiProfile profile, std::string model, ProviderContext ctx)
    : profile_(std::move(profile)), model_(std::move(model)), ctx_(std::move(ctx)) {
  if (!profile_.api_key.empty()) register_secret(profile_.api_key);
}

HttpRequest OpenAiProvider::make_request(const json& body, bool use_cache) const {
  HttpRequest r;
  r.url = join_url(profile_.base_url, "chat/completions");
  r.body = body.dump();
  if (!profile_.api_key.empty()) r.headers.push_back({"Authorization", "Bearer " + profile_.api_key});
  r.use_cache = use_cache;
  r.validate = [](const std::string& b) { return require_json_field(b, "choices"); };
  return r;
}

HttpRequest OpenAiProvider::make_score_request(const std::string& text, int top_k, bool use_cache) const {
  HttpRequest r = make_request(build_prompt_logprobs_request(model_, text, top_k), use_cache);
  r.url = join_url(profile_.base_url, "completions");
  return r;
}

Scoring OpenAiProvider::score(const std::string& text, int top_k) {
  Capabilities c = capabilities();
  if (!c.scoring) return Provider::score(text, top_k);  // throws the "cannot score" error
  if (!is_valid_utf8(text)) throw UsageError(profile_.name + ": text to score is not valid UTF-8");
  HttpRequest hr = make_score_request(text, top_k, true);
  hr.token_estimate = static_cast<double>(text.size()) / 4.0 + 1;
  HttpResponse resp = ctx_.http->send(hr);
  if (!resp.ok()) throw_provider_error(profile_.name, model_, profile_.key_setting, hr, resp);
  Scoring s;
  try {
    s = parse_prompt_logprobs(json::parse(resp.body), top_k, ctx_.teacher_tokenizer.get());
  } catch (const Error& e) {
    throw Error(profile_.name + " (" + url_for_display(hr.url) + "): " + e.what(), e.hint());
  }
  fill_unscored_first_token(text, s);
  if (ctx_.teacher_tokenizer) check_ids_spell_text(text, s);
  s.latency_s = resp.elapsed_s;
  return s;
}

Capabilities OpenAiProvider::capabilities() {
  std::lock_guard<std::mutex> lock(mu_);
  if (caps_) return *caps_;
  Capabilities c;
  if (profile_.logprobs_gate_closed) {
    c.source = "static";
    c.note = profile_.gate_note;
    caps_ = c;
    return c;
  }
  CapabilityStore store(ctx_.capability_dir);
  if (auto cached = store.load(profile_.name, profile_.base_url, model_)) {
    caps_ = cached;
    return *cached;
  }
  // Probe: one token with the most alternatives any OpenAI-shaped API allows; fall back to 5
  // (some reasoning models cap top_logprobs at 5).
  c.source = "probe";
  c.probed_at = iso8601_utc_now();
  for (int k : {20, 5}) {
    GenerateRequest probe;
    probe.prompt = "Hello";
    probe.max_tokens = 1;
    probe.top_k = k;
    HttpRequest hr = make_request(build_chat_request(model_, probe, profile_.max_tokens_field), false);
    HttpResponse resp = ctx_.http->send(hr);
    if (resp.ok()) {
      json reply = json::parse(resp.body, nullptr, false);
      try {
        Generation g = parse_chat_response(reply, true);
        c.logprobs = true;
        c.max_top_k = k;
        for (const auto& t : g.tokens) c.token_ids = c.token_ids || t.id >= 0;
      } catch (const Error& e) {
        c.note = e.what();
      }
      break;
    }
    const std::string msg = http_error_message(resp.body);
    if ((resp.status == 400 || resp.status == 403) && message_rejects_logprobs(msg)) {
      c.note = "HTTP " + std::to_string(resp.status) + ": " + msg;
      break;
    }
    if (resp.status == 400 && msg.find("top_logprobs") != std::string::npos && k == 20) continue;
    throw_provider_error(profile_.name, model_, profile_.key_setting, hr, resp);
  }
  if (profile_.may_score) {
    // Teacher-forced scoring is a vLLM extension: ask once, on a short text.
    HttpRequest sr = make_score_request("Hello world", 1, false);
    HttpResponse resp = ctx_.http->send(sr);
    if (resp.ok()) {
      try {
        parse_prompt_logprobs(json::parse(resp.body), 1);
        c.scoring = true;
      } catch (const std::exception& e) {
        c.note += std::string(c.note.empty() ? "" : "; ") + "no scoring: " + e.what();
      }
    } else {
      c.note += std::string(c.note.empty() ? "" : "; ") + "no scoring: HTTP " + std::to_string(resp.status) + " " +
                http_error_message(resp.body);
    }
  }
  store.save(profile_.name, profile_.base_url, model_, c);
  caps_ = c;
  return c;
}

Generation OpenAiProvider::generate(const GenerateRequest& req) {
  if (!is_valid_utf8(req.prompt))
    throw UsageError(profile_.name + ": the prompt is not valid UTF-8; JSON APIs cannot carry it");
  if (req.top_k > 0) {
    Capabilities c = capabilities();
    if (!c.logprobs) require_logprobs(*this, "top-K collection");
    if (req.top_k > c.max_top_k)
      throw UsageError(profile_.name + " model '" + model_ + "' gives at most " + std::to_string(c.max_top_k) +
                           " alternatives per token, " + std::to_string(req.top_k) + " were asked for",
                       "lower TOP_K to " + std::to_string(c.max_top_k));
  }
  json body = build_chat_request(model_, req, profile_.max_tokens_field);
  if (req.stream) {
    body["stream"] = true;
    body["stream_options"] = {{"include_usage", true}};
  }
  HttpRequest hr = make_request(body, req.use_cache);
  hr.token_estimate = static_cast<double>(req.prompt.size()) / 4.0 + req.max_tokens;
  // The reply must parse as the answer asked for before it counts (and is cached): a 200 with a
  // malformed body is retried like a 5xx, and never replayed from the cache.
  const bool want_logprobs = req.top_k > 0, stream = req.stream;
  hr.validate = [want_logprobs, stream](const std::string& b) {
    try {
      parse_chat_response(stream ? assemble_chat_stream(b) : json::parse(b), want_logprobs);
      return std::string();
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
  };
  if (req.stream) {
    // Scan only what arrived since the last call: the detector runs after every network chunk.
    auto scanned = std::make_shared<size_t>(0);
    hr.first_token_seen = [scanned](const std::string& so_far) {
      if (so_far.size() < *scanned) *scanned = 0;  // a retry started a new body
      size_t last_nl = so_far.rfind('\n');
      if (last_nl == std::string::npos || last_nl + 1 <= *scanned) return false;
      bool seen = chat_stream_has_token(so_far.substr(*scanned, last_nl + 1 - *scanned));
      *scanned = last_nl + 1;
      return seen;
    };
  }
  HttpResponse resp = ctx_.http->send(hr);
  if (!resp.ok()) throw_provider_error(profile_.name, model_, profile_.key_setting, hr, resp);
  Generation g;
  try {
    json reply = req.stream ? assemble_chat_stream(resp.body) : json::parse(resp.body, nullptr, false);
    g = parse_chat_response(reply, req.top_k > 0);
  } catch (const Error& e) {
    throw Error(profile_.name + " (" + url_for_display(hr.url) + "): " + e.what(), e.hint());
  }
  copy_response_timing(resp, g);
  g.ttft_s = resp.first_token_s;
  return g;
}

}  // namespace bkd

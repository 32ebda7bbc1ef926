#pragma once
// OpenAI Chat Completions and everything shaped like it: OpenAI, OpenAI-compatible servers (vLLM,
// llama.cpp, our own `serve`), Groq and AIMLAPI. They differ in base URL, key, and capability gates.
#include <string>

#include <nlohmann/json.hpp>

#include "core/teacher/provider.h"
#include "core/teacher/provider_http.h"

namespace bkd {

struct OpenAiProfile {
  std::string name;            // "openai" | "openai-compatible" | "groq" | "aimlapi"
  std::string base_url;        // .../v1
  std::string api_key;         // may be empty for openai-compatible
  std::string key_setting;     // "OPENAI_API_KEY", ...
  std::string max_tokens_field = "max_tokens";  // OpenAI itself wants "max_completion_tokens"
  bool logprobs_gate_closed = false;  // Groq: rejects logprobs with HTTP 400, so never ask
  std::string gate_note;
  bool may_score = false;  // self-hosted servers (vLLM, our serve): probe `prompt_logprobs`
};

// The request body for one prompt as a single user message.
nlohmann::json build_chat_request(const std::string& model, const GenerateRequest& req,
                                  const std::string& max_tokens_field);

// Parses a Chat Completions reply. Text is rebuilt byte-exactly from token `bytes` when every token
// has them; -9999 logprobs read as missing; vLLM's "token_id:N" and llama.cpp's `id` give ids.
// `want_logprobs`: a reply without logprobs is an error (the caller asked for them).
Generation parse_chat_response(const nlohmann::json& reply, bool want_logprobs);

// Streaming (SSE): assembles "data: {chunk}" events up to "data: [DONE]" into the non-streamed reply
// shape (content, logprobs.content, finish_reason, usage). Throws on truncated or malformed streams.
nlohmann::json assemble_chat_stream(const std::string& sse);
// True once the stream so far holds a chunk with generated content (time to first token).
bool chat_stream_has_token(const std::string& sse_so_far);

// vLLM's teacher-forced scoring: POST /completions with `prompt_logprobs: K` and
// `return_token_ids: true`; the reply's choices[0].prompt_logprobs is one {"<token id>": {logprob,
// rank, decoded_token}} map per prompt token (null for the first) and prompt_token_ids says which
// entry is the actual token.
nlohmann::json build_prompt_logprobs_request(const std::string& model, const std::string& text, int top_k);
// vLLM (and `serve`) send prompt_logprobs[0] = null: nothing predicts the first token, and its text
// comes with no entry. It is what the scored text holds before the other tokens' bytes.
void fill_unscored_first_token(const std::string& text, Scoring& s);
// With `tokenizer` (the server model's, TEACHER_TOKENIZER), every token's and candidate's bytes are
// those of its id; an id outside the tokenizer is an error naming TEACHER_TOKENIZER.
Scoring parse_prompt_logprobs(const nlohmann::json& reply, int top_k, const Tokenizer* tokenizer = nullptr);

class OpenAiProvider : public Provider {
 public:
  OpenAiProvider(OpenAiProfile profile, std::string model, ProviderContext ctx);
  std::string name() const override { return profile_.name; }
  std::string model() const override { return model_; }
  Capabilities capabilities() override;
  Generation generate(const GenerateRequest& req) override;
  Scoring score(const std::string& text, int top_k) override;

 private:
  HttpRequest make_score_request(const std::string& text, int top_k, bool use_cache) const;
  HttpRequest make_request(const nlohmann::json& body, bool use_cache) const;
  OpenAiProfile profile_;
  std::string model_;
  ProviderContext ctx_;
  std::optional<Capabilities> caps_;
  std::mutex mu_;
};

}  // namespace bkd

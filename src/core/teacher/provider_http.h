#pragma once
// What the HTTP providers share: the client, where capabilities are stored, and one way of turning
// a failed reply into an error that says what went wrong and what to change.
#include <memory>
#include <string>

#include "core/http/http_client.h"
#include "core/teacher/capability_store.h"
#include "core/teacher/provider.h"
#include "core/tokenizer/tokenizer.h"

namespace bkd {

struct ProviderContext {
  std::shared_ptr<HttpClient> http;
  std::string capability_dir;  // CACHE_DIR/capabilities; empty: do not store probes
  // A local copy of the server model's tokenizer (TEACHER_TOKENIZER): scored candidates take their
  // bytes from their ids through it, not from the reply's display text (vLLM's decoded_token is "\uFFFD"
  // for a partial UTF-8 token and raw "Ġ..." for byte-level vocabularies). nullptr: the text is used.
  std::shared_ptr<const Tokenizer> teacher_tokenizer;
};

// Throws: 401 -> key rejected (names key_setting); 403/400 about logprobs -> UsageError listing the
// providers that can; 404 -> unknown model (names TEACHER_MODEL); otherwise HttpError with the message.
[[noreturn]] void throw_provider_error(const std::string& provider, const std::string& model,
                                       const std::string& key_setting, const HttpRequest& req,
                                       const HttpResponse& resp);

// Latency, time to first byte, cache hit and attempt count of the reply that produced `g`.
void copy_response_timing(const HttpResponse& resp, Generation& g);

// True when an error message says logprobs (or top_logprobs) are not supported/allowed.
bool message_rejects_logprobs(const std::string& msg);

// Returns "" when `body` is a JSON object holding `field`, else why not (HttpRequest::validate).
std::string require_json_field(const std::string& body, const char* field);

}  // namespace bkd

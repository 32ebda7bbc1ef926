#pragma once
// Builds the configured teacher from settings: checks the key before any request is made, refuses
// to leave the machine while SKIP_EXTERNAL is set, and wires the shared HTTP client and caches.
#include <memory>
#include <string>
#include <vector>

#include "core/http/http_client.h"
#include "core/teacher/local_model.h"
#include "core/teacher/provider.h"

namespace bkd {
class Settings;

const std::vector<std::string>& known_providers();
// The setting holding the provider's key ("" for local; openai-compatible's key is optional).
std::string api_key_setting(const std::string& provider);
// What keeps the configured teacher from working before anything is sent: an unknown provider, a
// missing key, a base URL that is not an http(s) URL. Each entry says what and how to fix it.
std::vector<std::string> teacher_setting_problems(const Settings& s);
std::string base_url_setting(const std::string& provider);

// HTTP_TIMEOUT_S, HTTP_MAX_RETRIES, HTTP_BACKOFF_BASE_S, REQUESTS_PER_MIN, TOKENS_PER_MIN, MAX_IN_FLIGHT,
// CACHE_DIR/http, SKIP_EXTERNAL.
HttpOptions http_options_from_settings(const Settings& s);

struct ProviderSpec {
  std::string provider;  // TEACHER_PROVIDER
  std::string model;     // TEACHER_MODEL
  std::shared_ptr<LocalLanguageModel> local_model;  // for "local": use this instead of loading
  bool use_cache_dirs = true;                       // CACHE_DIR/http and CACHE_DIR/capabilities
  std::shared_ptr<HttpClient> http;                 // shared client; built from settings when null
};

// The teacher's model id in KD traces, manifests and caches: TEACHER_MODEL, and for a Hugging Face
// teacher (TEACHER_PROVIDER=local with TEACHER_MODEL_DIR) "@" and 16 hex digits of the folder's content
// identity (hf_config.h), so traces of another model put in the same folder never pass for its own.
std::string teacher_model_id(const Settings& s);
ProviderSpec provider_spec_from_settings(const Settings& s);
// Throws UsageError for an unknown provider, a missing key (naming the variable), or an external
// base URL while SKIP_EXTERNAL is set — all before any request.
std::unique_ptr<Provider> make_provider(const Settings& s, const ProviderSpec& spec);
inline std::unique_ptr<Provider> make_provider(const Settings& s) {
  return make_provider(s, provider_spec_from_settings(s));
}

}  // namespace bkd

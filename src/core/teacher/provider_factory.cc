#include "core/teacher/provider_factory.h"

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/http/url.h"
#include "core/model/hf_config.h"
#include "core/teacher/anthropic_provider.h"
#include "core/teacher/gemini_provider.h"
#include "core/teacher/local_provider.h"
#include "core/teacher/openai_chat.h"
#include "core/tokenizer/hf_folder_tokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"

namespace bkd {

const std::vector<std::string>& known_providers() {
  static const std::vector<std::string> k = {"local", "openai", "openai-compatible", "groq",
                                             "aimlapi", "gemini", "anthropic"};
  return k;
}

std::string api_key_setting(const std::string& p) {
  if (p == "openai") return "OPENAI_API_KEY";
  if (p == "openai-compatible") return "OPENAI_COMPAT_API_KEY";
  if (p == "groq") return "GROQ_API_KEY";
  if (p == "aimlapi") return "AIMLAPI_API_KEY";
  if (p == "gemini") return "GEMINI_API_KEY";
  if (p == "anthropic") return "ANTHROPIC_API_KEY";
  return "";
}

std::string base_url_setting(const std::string& p) {
  if (p == "openai") return "OPENAI_BASE_URL";
  if (p == "openai-compatible") return "OPENAI_COMPAT_BASE_URL";
  if (p == "groq") return "GROQ_BASE_URL";
  if (p == "aimlapi") return "AIMLAPI_BASE_URL";
  if (p == "gemini") return "GEMINI_BASE_URL";
  if (p == "anthropic") return "ANTHROPIC_BASE_URL";
  return "";
}

std::vector<std::string> teacher_setting_problems(const Settings& s) {
  std::vector<std::string> out;
  const std::string provider = s.str("TEACHER_PROVIDER");
  const auto& known = known_providers();
  if (std::find(known.begin(), known.end(), provider) == known.end()) {
    out.push_back("TEACHER_PROVIDER=" + provider + " is not a provider this tool knows");
    return out;
  }
  if (provider == "local") return out;
  const std::string key_name = api_key_setting(provider);
  if (s.str(key_name).empty() && provider != "openai-compatible")
    out.push_back("TEACHER_PROVIDER=" + provider + " needs " + key_name + ", which is not set: put " + key_name +
                  "=... in .env or the environment");
  const std::string url_name = base_url_setting(provider);
  if (const std::string why = url_problem(s.str(url_name)); !why.empty())
    out.push_back(url_name + "=" + url_without_credentials(s.str(url_name)) + " is not a usable URL: " + why +
                  " (for example https://api.example.com/v1)");
  return out;
}

HttpOptions http_options_from_settings(const Settings& s) {
  HttpOptions o;
  o.timeout_s = s.f64("HTTP_TIMEOUT_S");
  o.connect_timeout_s = std::min(10.0, o.timeout_s);
  o.max_retries = static_cast<int>(s.i64("HTTP_MAX_RETRIES"));
  o.backoff.base_s = s.f64("HTTP_BACKOFF_BASE_S");
  o.backoff.max_s = std::max(8.0, o.backoff.base_s);
  o.requests_per_min = static_cast<double>(s.i64("REQUESTS_PER_MIN"));
  o.tokens_per_min = static_cast<double>(s.i64("TOKENS_PER_MIN"));
  o.max_in_flight = static_cast<int>(s.i64("MAX_IN_FLIGHT"));
  o.cache_dir = RunLayout(s).http_cache();
  o.allow_external = !s.flag("SKIP_EXTERNAL");
  return o;
}

std::string teacher_model_id(const Settings& s) {
  const std::string dir = s.str("TEACHER_MODEL_DIR");
  if (s.str("TEACHER_PROVIDER") != "local" || dir.empty()) return s.str("TEACHER_MODEL");
  return s.str("TEACHER_MODEL") + "@" + hf_folder_identity(dir).substr(0, 16);
}

ProviderSpec provider_spec_from_settings(const Settings& s) {
  ProviderSpec spec;
  spec.provider = s.str("TEACHER_PROVIDER");
  spec.model = teacher_model_id(s);
  return spec;
}

std::unique_ptr<Provider> make_provider(const Settings& s, const ProviderSpec& spec) {
  const auto& known = known_providers();
  if (std::find(known.begin(), known.end(), spec.provider) == known.end()) {
    std::string list;
    for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
    throw UsageError("unknown teacher provider '" + spec.provider + "'", "TEACHER_PROVIDER must be one of: " + list);
  }
  if (spec.model.empty()) throw UsageError("TEACHER_MODEL is empty", "name the model to use at " + spec.provider);

  if (spec.provider == "local") {
    std::shared_ptr<LocalLanguageModel> m = spec.local_model;
    if (!m) m = load_local_model(s, spec.model);
    return std::make_unique<LocalProvider>(std::move(m));
  }

  // API providers: the key first (before anything is sent), then where we would connect.
  const std::string key_name = api_key_setting(spec.provider);
  const std::string key = s.str(key_name);
  if (key.empty() && spec.provider != "openai-compatible")
    throw UsageError("TEACHER_PROVIDER=" + spec.provider + " needs " + key_name + ", which is not set",
                     "put " + key_name + "=... in .env or the environment (keys are never logged or written)");
  register_secret(key);
  const std::string url_name = base_url_setting(spec.provider);
  const std::string base_url = s.str(url_name);
  if (const std::string why = url_problem(base_url); !why.empty())
    throw UsageError(url_name + "=" + url_without_credentials(base_url) + " is not a usable URL: " + why,
                     "set " + url_name + " to the provider's API base, for example https://api.example.com/v1");
  if (s.flag("SKIP_EXTERNAL") && !is_loopback_url(base_url))
    throw UsageError("TEACHER_PROVIDER=" + spec.provider + " would contact " + url_host(base_url) +
                         " (" + url_name + "), but SKIP_EXTERNAL is set",
                     "set SKIP_EXTERNAL=false to use an external provider, or point " + url_name +
                         " at a server on this machine");

  ProviderContext ctx;
  ctx.http = spec.http;
  if (!ctx.http) {
    HttpOptions o = http_options_from_settings(s);
    if (!spec.use_cache_dirs) o.cache_dir.clear();
    ctx.http = std::make_shared<HttpClient>(o);
  }
  if (spec.use_cache_dirs) ctx.capability_dir = RunLayout(s).capability_cache();
  if (const std::string dir = s.str("TEACHER_TOKENIZER"); !dir.empty()) ctx.teacher_tokenizer = load_hf_folder_tokenizer(dir);

  if (spec.provider == "gemini") return std::make_unique<GeminiProvider>(base_url, key, spec.model, ctx);
  if (spec.provider == "anthropic") return std::make_unique<AnthropicProvider>(base_url, key, spec.model, ctx);

  OpenAiProfile p;
  p.name = spec.provider;
  p.base_url = base_url;
  p.api_key = key;
  p.key_setting = key_name;
  if (spec.provider == "openai") p.max_tokens_field = "max_completion_tokens";
  p.may_score = spec.provider == "openai-compatible";
  if (spec.provider == "groq") {
    p.logprobs_gate_closed = true;
    p.gate_note = "Groq rejects `logprobs`/`top_logprobs` with HTTP 400 (console.groq.com/docs/openai)";
  }
  return std::make_unique<OpenAiProvider>(p, spec.model, ctx);
}

}  // namespace bkd

#include "core/teacher/provider_http.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "core/teacher/provider.h"
#include "core/util/log.h"

namespace bkd {

bool message_rejects_logprobs(const std::string& msg) {
  std::string m = msg;
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return m.find("logprob") != std::string::npos &&
         (m.find("not support") != std::string::npos || m.find("unsupported") != std::string::npos ||
          m.find("not allowed") != std::string::npos || m.find("not enabled") != std::string::npos ||
          m.find("unrecognized") != std::string::npos);
}

void throw_provider_error(const std::string& provider, const std::string& model, const std::string& key_setting,
                          const HttpRequest& req, const HttpResponse& resp) {
  const std::string msg = http_error_message(resp.body);
  const std::string what = describe_http_failure(req, resp);
  if (resp.status == 401)
    throw UsageError(provider + " rejected the API key (" + what + ")",
                     key_setting.empty() ? "check the server's key settings" : "check " + key_setting);
  if ((resp.status == 400 || resp.status == 403) && message_rejects_logprobs(msg)) {
    std::string list;
    for (const auto& n : providers_with_logprobs()) list += (list.empty() ? "" : ", ") + n;
    throw UsageError(provider + " model '" + model + "' does not give logprobs (" + what + ")",
                     "providers that can: " + list + "; support varies by model");
  }
  if (resp.status == 404)
    throw UsageError(provider + " does not know model '" + model + "' (" + what + ")",
                     "check TEACHER_MODEL (and the provider's base URL)");
  throw HttpError(what, resp.status);
}

std::string require_json_field(const std::string& body, const char* field) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) return "not valid JSON (truncated?)";
  if (!j.is_object()) return "JSON is not an object";
  if (!j.contains(field)) return std::string("no `") + field + "` field";
  return {};
}

void copy_response_timing(const HttpResponse& resp, Generation& g) {
  g.latency_s = resp.elapsed_s;
  g.ttfb_s = resp.ttfb_s;
  g.from_cache = resp.from_cache;
  g.attempts = resp.attempts;
}

}  // namespace bkd

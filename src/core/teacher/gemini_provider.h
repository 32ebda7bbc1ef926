#pragma once
// Google Gemini generateContent: top-K logprobs via generationConfig.responseLogprobs/logprobs,
// returned in candidates[].logprobsResult with token ids. Proto3 JSON omits zero values, so a
// missing logProbability or tokenId means 0.
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/teacher/provider.h"
#include "core/teacher/provider_http.h"

namespace bkd {

nlohmann::json build_gemini_request(const GenerateRequest& req);
Generation parse_gemini_response(const nlohmann::json& reply, bool want_logprobs);

class GeminiProvider : public Provider {
 public:
  GeminiProvider(std::string base_url, std::string api_key, std::string model, ProviderContext ctx);
  std::string name() const override { return "gemini"; }
  std::string model() const override { return model_; }
  Capabilities capabilities() override;
  Generation generate(const GenerateRequest& req) override;

 private:
  HttpRequest make_request(const nlohmann::json& body, bool use_cache) const;
  std::string base_url_, api_key_, model_;
  ProviderContext ctx_;
  std::optional<Capabilities> caps_;
  std::mutex mu_;
};

}  // namespace bkd

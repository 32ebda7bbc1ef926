#pragma once
// Anthropic Messages API: text only. Anthropic gives no logprobs at all, so it can serve as a
// baseline (latency, throughput, usage) but never as a top-K teacher.
#include <string>

#include <nlohmann/json.hpp>

#include "core/teacher/provider.h"
#include "core/teacher/provider_http.h"

namespace bkd {

nlohmann::json build_anthropic_request(const std::string& model, const GenerateRequest& req);
Generation parse_anthropic_response(const nlohmann::json& reply);

class AnthropicProvider : public Provider {
 public:
  AnthropicProvider(std::string base_url, std::string api_key, std::string model, ProviderContext ctx);
  std::string name() const override { return "anthropic"; }
  std::string model() const override { return model_; }
  Capabilities capabilities() override;
  Generation generate(const GenerateRequest& req) override;

 private:
  std::string base_url_, api_key_, model_;
  ProviderContext ctx_;
};

}  // namespace bkd

#include "core/teacher/provider.h"

#include <nlohmann/json.hpp>

#include "core/teacher/logprob_math.h"
#include "core/util/error.h"
#include "core/util/log.h"

namespace bkd {

const char* const kContinuationInstruction =
    "Continue the text in the user message from exactly where it stops, in the same language and style. "
    "Reply with the continuation only: no preamble, no quotes, no commentary.";

nlohmann::json Capabilities::to_json() const {
  return {{"logprobs", logprobs}, {"max_top_k", max_top_k}, {"token_ids", token_ids}, {"scoring", scoring}, {"sampled_scoring", sampled_scoring},
          {"probed_at", probed_at}, {"source", source},      {"note", note}};
}

Capabilities Capabilities::from_json(const nlohmann::json& j) {
  Capabilities c;
  c.logprobs = j.value("logprobs", false);
  c.max_top_k = j.value("max_top_k", 0);
  c.token_ids = j.value("token_ids", false);
  c.scoring = j.value("scoring", false);
  c.sampled_scoring = j.value("sampled_scoring", false);
  c.probed_at = j.value("probed_at", std::string());
  c.source = j.value("source", std::string());
  c.note = j.value("note", std::string());
  return c;
}

Scoring Provider::score(const std::string&, int) {
  throw UsageError("provider '" + name() + "' cannot score given text (no teacher-forced logprobs)",
                   "use TEACHER_PROVIDER=local, or an openai-compatible vLLM server, for scoring");
}

Scoring Provider::score_sampled(const std::string&, int, uint64_t) {
  throw UsageError("provider '" + name() + "' cannot draw from its full distribution (sampled KD, KD_SAMPLES > 0)",
                   "use TEACHER_PROVIDER=local (a trained teacher or TEACHER_MODEL_DIR), or set KD_SAMPLES=0 for top-K traces");
}

int top_k_within_limit(const Capabilities& caps, int requested, const std::string& teacher) {
  if (!caps.logprobs) return 0;
  if (requested <= caps.max_top_k) return requested;
  log_warn("teacher " + teacher + " gives at most " + std::to_string(caps.max_top_k) + " alternatives per token; TOP_K=" +
           std::to_string(requested) + " is lowered to " + std::to_string(caps.max_top_k) + " (recorded as k and k_requested)");
  return caps.max_top_k;
}

void fill_log_other_from_topk(std::vector<GeneratedToken>& tokens) {
  for (auto& t : tokens) {
    if (t.top.empty()) continue;
    std::vector<double> lps;
    for (const auto& c : t.top) lps.push_back(c.logprob);
    t.log_other = log_other_from_topk(lps);
  }
}

std::vector<std::string> providers_with_logprobs() {
  return {"local", "openai", "openai-compatible", "aimlapi", "gemini"};
}

void require_logprobs(Provider& p, const std::string& purpose) {
  Capabilities c = p.capabilities();
  if (c.logprobs) return;
  std::string list;
  for (const auto& n : providers_with_logprobs()) list += (list.empty() ? "" : ", ") + n;
  throw UsageError(purpose + " needs top-K logprobs, but provider '" + p.name() + "' (model '" + p.model() +
                       "') gives none" + (c.note.empty() ? "" : " (" + c.note + ")"),
                   "set TEACHER_PROVIDER to one that can: " + list +
                       " (support varies by model: it is probed and recorded per model)");
}

}  // namespace bkd

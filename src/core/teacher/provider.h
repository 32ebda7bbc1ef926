#pragma once
// A teacher: something that continues a prompt and, where it can, says how likely each generated
// token was and which top-K alternatives it weighed. API providers (OpenAI-shaped, Gemini,
// Anthropic) and the in-process local model all implement this one interface.
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace bkd {

constexpr double kMissingLogprob = std::numeric_limits<double>::quiet_NaN();

struct TokenCandidate {
  std::string text;   // display text ("bytes:\xNN" when not valid UTF-8 on its own)
  std::string bytes;  // exact bytes
  int32_t id = -1;    // token id in the teacher's vocabulary, -1 when the provider gives none
  double logprob = kMissingLogprob;
};

struct GeneratedToken : TokenCandidate {
  std::vector<TokenCandidate> top;  // up to K alternatives, most likely first (may include the token)
  double log_other = kMissingLogprob;  // log of the mass outside `top` (NaN when no top-K)
  int32_t rank = 0;  // 1 = most likely; 0 when unknown
};

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0, total_tokens = 0;
};

// What a chat teacher is told besides the text, when it is asked to continue it (generate mode and the
// baseline). The text itself goes as the user message; a base model (local, `serve`) gets the text
// alone. The student trains on the text and the continuation: the instruction is the same for every
// sequence and recorded in the shards' metadata (bkd.teacher_instruction).
extern const char* const kContinuationInstruction;

struct GenerateRequest {
  std::string prompt;
  std::string instruction;   // a system instruction for chat teachers; empty: none
  int max_tokens = 64;
  int top_k = 0;             // 0: no logprobs asked for
  double temperature = 0;    // 0: greedy
  uint64_t seed = 0;
  bool use_cache = true;     // false forces a fresh answer (determinism checks)
  bool stream = false;       // HTTP: stream the reply (SSE) so time to first token is measurable
  std::function<void(const GeneratedToken&)> on_token;  // local: called as each token is chosen
};

struct Generation {
  std::vector<GeneratedToken> tokens;  // empty when the provider gives no per-token data
  std::string text;                    // byte-exact (rebuilt from token bytes where available)
  std::string finish_reason;
  Usage usage;
  double latency_s = 0;     // request start to complete answer
  double ttft_s = -1;       // time to first token, -1 when not measurable (non-streaming HTTP)
  double ttfb_s = -1;       // time to first response byte (HTTP)
  bool from_cache = false;  // answered from the response cache (latency is the original one)
  int attempts = 1;
  std::string system_fingerprint;
};

struct Scoring {
  // One entry per token of the text; tokens[0] has no prediction (nothing before it).
  std::vector<GeneratedToken> tokens;
  double latency_s = 0;
};

struct Capabilities {
  bool logprobs = false;   // top-K logprobs on generated tokens
  int max_top_k = 0;
  bool token_ids = false;  // ids of the teacher's vocabulary come back
  bool scoring = false;    // logprobs of given text (teacher forcing)
  bool sampled_scoring = false;  // draws from the full distribution at each position (RS-KD)
  std::string probed_at;   // ISO-8601 UTC of the probe ("" for static facts)
  std::string source;      // "static" | "probe" | "cache"
  std::string note;        // why not, when a capability is missing
  nlohmann::json to_json() const;
  static Capabilities from_json(const nlohmann::json& j);
};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual std::string name() const = 0;   // "openai", "gemini", "local", ...
  virtual std::string model() const = 0;
  // Probed once per model (then cached with its date); static where the facts are fixed.
  virtual Capabilities capabilities() = 0;
  virtual Generation generate(const GenerateRequest& req) = 0;
  // Logprobs (and top-K) of every token of `text`. Throws where the provider cannot.
  virtual Scoring score(const std::string& text, int top_k);
  // Sampled scoring (random-sampling KD, arXiv 2503.16870): at every position `draws` tokens drawn
  // with replacement from the model's full distribution (temperature 1). Each token's `top` holds the
  // distinct draws, most frequent first, with logprob = log(count / draws), and log_other = -inf: an
  // unbiased estimate of the distribution instead of the top-K's biased truncation. Same text and seed,
  // same draws. Throws where the provider cannot (it needs the full distribution).
  virtual Scoring score_sampled(const std::string& text, int draws, uint64_t seed);
};

// The one rule for K against a provider's limit: a stage asks for min(requested, caps.max_top_k) and
// says so in the log when that is fewer than requested (the report and the KD manifest record both);
// a provider asked directly for more than its limit throws. 0 when the provider gives no logprobs.
int top_k_within_limit(const Capabilities& caps, int requested, const std::string& teacher);

// Fills log_other of every token from its top-K (formula on provider values).
void fill_log_other_from_topk(std::vector<GeneratedToken>& tokens);

// Providers that can give top-K logprobs on generated tokens (for error messages).
std::vector<std::string> providers_with_logprobs();
// Throws bkd::UsageError listing the providers that can, when `p` cannot give logprobs.
void require_logprobs(Provider& p, const std::string& purpose);

}  // namespace bkd

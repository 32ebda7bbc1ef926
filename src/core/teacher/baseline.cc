#include "core/teacher/baseline.h"

#include "core/data/corpus.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/teacher/token_text.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/util/progress.h"
#include "core/util/sysinfo.h"

namespace bkd {
namespace {
using nlohmann::json;

// [begin, end) byte ranges of whitespace-separated words.
std::vector<std::pair<size_t, size_t>> word_spans(const std::string& s) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t b = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > b) out.push_back({b, i});
  }
  return out;
}

std::string token_key(const GeneratedToken& t) { return t.id >= 0 ? std::to_string(t.id) : t.bytes; }

// The position where two generations first differ, or -1 when identical.
int first_difference(const Generation& a, const Generation& b) {
  if (!a.tokens.empty() || !b.tokens.empty()) {
    size_t n = std::min(a.tokens.size(), b.tokens.size());
    for (size_t i = 0; i < n; ++i)
      if (token_key(a.tokens[i]) != token_key(b.tokens[i])) return static_cast<int>(i);
    return a.tokens.size() == b.tokens.size() ? -1 : static_cast<int>(n);
  }
  if (a.text == b.text) return -1;
  size_t i = 0;
  while (i < a.text.size() && i < b.text.size() && a.text[i] == b.text[i]) ++i;
  return static_cast<int>(i);  // a byte offset when no tokens are available
}

}  // namespace

std::string prompt_length_method() {
  std::ostringstream o;
  o << "approximate: PROMPT_TOKENS / " << kTokensPerWord
    << " whitespace-separated words of held-out text (about 1.3 BPE tokens per English word)";
  return o.str();
}

std::vector<BaselinePrompt> draw_baseline_prompts(const std::string& path, int count, int prompt_tokens,
                                                  std::optional<uint64_t> sample_seed) {
  const int words = std::max(1, static_cast<int>(std::ceil(prompt_tokens / kTokensPerWord)));
  struct Doc {
    std::string id, source, text;
    std::vector<std::pair<size_t, size_t>> spans;
  };
  std::vector<Doc> docs;
  std::vector<Document> split_docs = read_split_jsonl(path);  // throws naming the file and `bitnet-kde prepare`
  if (sample_seed) split_docs = in_sample_order(std::move(split_docs), *sample_seed);
  for (auto& split_doc : split_docs) {
    Doc d{std::move(split_doc.id), std::move(split_doc.source), std::move(split_doc.text), {}};
    d.spans = word_spans(d.text);
    if (!d.spans.empty()) docs.push_back(std::move(d));
  }
  if (docs.empty()) throw Error("held-out split " + path + " holds no text", "run `bitnet-kde prepare` first");
  std::vector<BaselinePrompt> out;
  for (size_t chunk = 0; static_cast<int>(out.size()) < count; ++chunk) {
    bool any = false;
    for (const auto& d : docs) {
      if (static_cast<int>(out.size()) >= count) break;
      size_t first = chunk * words;
      if (first >= d.spans.size()) continue;
      size_t last = std::min(d.spans.size(), first + words) - 1;
      if (chunk > 0 && last - first + 1 < static_cast<size_t>(words)) continue;  // no short tails after chunk 0
      any = true;
      out.push_back({d.id + "#" + std::to_string(chunk), d.source,
                     d.text.substr(d.spans[first].first, d.spans[last].second - d.spans[first].first)});
    }
    if (!any) break;  // the split is smaller than asked: use what there is
  }
  if (static_cast<int>(out.size()) < count)
    log_warn("baseline: the held-out split gives only " + std::to_string(out.size()) + " prompts of ~" +
             std::to_string(words) + " words (" + std::to_string(count) + " asked)");
  return out;
}

double percentile(std::vector<double> v, double p) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return std::isnan(x); }), v.end());
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  double pos = std::clamp(p, 0.0, 1.0) * (v.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos)), hi = static_cast<size_t>(std::ceil(pos));
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

json distribution_json(const std::vector<double>& values) {
  std::vector<double> v;
  for (double x : values)
    if (!std::isnan(x)) v.push_back(x);
  if (v.empty()) return nullptr;
  double sum = 0;
  for (double x : v) sum += x;
  return {{"count", v.size()},          {"mean", sum / v.size()},        {"min", percentile(v, 0)},
          {"p10", percentile(v, 0.1)},  {"p50", percentile(v, 0.5)},     {"p90", percentile(v, 0.9)},
          {"p99", percentile(v, 0.99)}, {"max", percentile(v, 1.0)}};
}

// No single decode stream runs this fast; a higher figure means the tokens arrived in one burst.
constexpr double kMaxPlausibleDecodeTps = 20000;

json run_baseline(Provider& provider, const std::vector<BaselinePrompt>& prompts, const BaselineOptions& opts) {
  if (prompts.empty()) throw Error("no prompts for the teacher baseline");
  // Capabilities first: for API providers this is the first request, so a bad key or an unknown
  // model fails here, once, with a clear message.
  Capabilities caps = provider.capabilities();
  const int top_k = top_k_within_limit(caps, opts.top_k, provider.name() + "/" + provider.model());

  struct Result {
    Generation g;
    std::string error;
    bool done = false;
  };
  std::vector<Result> results(prompts.size());
  std::atomic<size_t> next{0};
  std::mutex mu;
  Progress progress("teacher baseline", prompts.size(), "prompts");
  Timer wall;
  auto make_request = [&](const BaselinePrompt& p, bool use_cache) {
    GenerateRequest r;
    r.prompt = p.text;
    r.instruction = kContinuationInstruction;
    r.max_tokens = opts.max_new_tokens;
    r.top_k = top_k;
    r.temperature = opts.temperature;
    r.seed = opts.seed;
    r.use_cache = use_cache;
    r.stream = true;  // OpenAI-shaped HTTP providers stream, so time to first token is measurable
    return r;
  };
  auto worker = [&] {
    for (size_t i; (i = next++) < prompts.size();) {
      Result r;
      try {
        r.g = provider.generate(make_request(prompts[i], true));
      } catch (const UsageError&) {
        throw;
      } catch (const std::exception& e) {
        r.error = to_valid_utf8(redact(e.what()));
      }
      r.done = true;
      std::lock_guard<std::mutex> lock(mu);
      results[i] = std::move(r);
      progress.add(1);
    }
  };
  // The local model runs one request at a time: more threads would only add queueing to latency.
  const int in_flight = provider.name() == "local" ? 1 : opts.in_flight;
  const int n_threads = std::max(1, std::min<int>(in_flight, static_cast<int>(prompts.size())));
  std::vector<std::thread> threads;
  std::vector<std::exception_ptr> failures(n_threads);
  for (int t = 0; t < n_threads; ++t)
    threads.emplace_back([&, t] {
      try {
        worker();
      } catch (...) {
        failures[t] = std::current_exception();
        next = prompts.size();  // stop the others: the same mistake would fail every request
      }
    });
  for (auto& t : threads) t.join();
  for (auto& f : failures)
    if (f) std::rethrow_exception(f);
  const double wall_s = wall.seconds();
  progress.finish();

  std::vector<double> latency, ttft, ttfb, decode_tps, e2e_tps;
  int bursts = 0;
  Usage usage;
  int errors = 0, from_cache = 0;
  json error_list = json::array();
  json examples = json::array();
  for (size_t i = 0; i < results.size(); ++i) {
    const Result& r = results[i];
    if (!r.error.empty()) {
      ++errors;
      if (error_list.size() < 5) error_list.push_back({{"prompt_id", to_valid_utf8(prompts[i].id)}, {"error", r.error}});
      continue;
    }
    const Generation& g = r.g;
    from_cache += g.from_cache;
    latency.push_back(g.latency_s);
    if (g.ttft_s >= 0) ttft.push_back(g.ttft_s);
    if (g.ttfb_s >= 0) ttfb.push_back(g.ttfb_s);
    const double n = static_cast<double>(g.usage.completion_tokens);
    if (g.latency_s > 0 && n > 0) {
      e2e_tps.push_back(n / g.latency_s);
      // Decode rate excludes the time to the first token where we can measure it. A stream that a
      // buffering proxy delivers in one burst leaves no decode time to measure: such a request gives
      // no decode rate (counted as a burst), rather than a figure of 1e5 tokens/s.
      const double decode_s = g.ttft_s >= 0 ? g.latency_s - g.ttft_s : g.latency_s;
      const double decode_n = g.ttft_s >= 0 ? n - 1 : n;
      if (decode_s > 0 && decode_n > 0) {
        // Only a reply that came over the network (it has a time to first byte) can arrive in a burst.
        const bool over_http = g.ttfb_s >= 0;
        if (!over_http || decode_n / decode_s <= kMaxPlausibleDecodeTps) decode_tps.push_back(decode_n / decode_s);
        else ++bursts;
      }
    }
    usage.prompt_tokens += g.usage.prompt_tokens;
    usage.completion_tokens += g.usage.completion_tokens;
    usage.total_tokens += g.usage.total_tokens;
    if (examples.size() < 3)
      examples.push_back({{"prompt_id", to_valid_utf8(prompts[i].id)},
                          {"prompt_tail", to_valid_utf8(prompts[i].text.substr(prompts[i].text.size() > 120 ? prompts[i].text.size() - 120 : 0))},
                          {"completion", to_valid_utf8(g.text.substr(0, 300))},
                          {"finish_reason", g.finish_reason}});
  }
  if (errors == static_cast<int>(prompts.size()))
    throw Error("every baseline request failed; first error: " + error_list[0]["error"].get<std::string>());

  // Determinism: the same prompts again, fresh (never from the response cache).
  json det = {{"prompts_checked", 0}, {"identical", 0}, {"mismatches", json::array()}};
  int checked = 0, identical = 0;
  for (size_t i = 0; i < prompts.size() && checked < opts.determinism_prompts; ++i) {
    if (!results[i].error.empty()) continue;
    Generation again;
    try {
      again = provider.generate(make_request(prompts[i], false));
    } catch (const std::exception& e) {
      det["mismatches"].push_back({{"prompt_id", prompts[i].id}, {"error", to_valid_utf8(redact(e.what()))}});
      ++checked;
      continue;
    }
    ++checked;
    int diff = first_difference(results[i].g, again);
    if (diff < 0) {
      ++identical;
    } else {
      det["mismatches"].push_back({{"prompt_id", prompts[i].id}, {"first_difference_at", diff}});
    }
  }
  det["prompts_checked"] = checked;
  det["identical"] = identical;
  det["deterministic"] = checked > 0 && identical == checked;
  det["method"] = "each checked prompt generated a second time with the response cache bypassed; compared by token id "
                  "(or token bytes when the provider gives no ids)";

  const double cost = usage.total_tokens / 1000.0 * opts.price_per_1k_tokens;
  json ttft_json = distribution_json(ttft);
  json body = {
      {"provider", provider.name()},
      {"model", provider.model()},
      {"capabilities", caps.to_json()},
      {"settings",
       {{"prompts", prompts.size()}, {"max_new_tokens", opts.max_new_tokens}, {"top_k_requested", opts.top_k},
        {"top_k_used", top_k}, {"temperature", opts.temperature}, {"seed", opts.seed}, {"max_in_flight", opts.in_flight}, {"in_flight_used", n_threads}}},
      {"prompt_length_method", prompt_length_method()},
      {"requests", {{"total", prompts.size()}, {"ok", prompts.size() - errors}, {"errors", errors},
                    {"from_cache", from_cache}, {"error_examples", error_list}}},
      {"decode_tokens_per_s", distribution_json(decode_tps)},
      {"decode_burst_requests", bursts},
      {"decode_tokens_per_s_note",
       "per request: (completion tokens - 1) / (latency - time to first token); over HTTP, requests whose tokens "
       "arrived faster than " + std::to_string(static_cast<int>(kMaxPlausibleDecodeTps)) +
           " tokens/s (a stream delivered in one burst) give no decode rate and are counted in decode_burst_requests"},
      {"end_to_end_tokens_per_s", distribution_json(e2e_tps)},
      {"aggregate_tokens_per_s", wall_s > 0 ? usage.completion_tokens / wall_s : 0.0},
      {"time_to_first_token_s", ttft_json},
      {"time_to_first_token_note", ttft.empty() ? "not measured for this provider (its replies are not streamed here; see time_to_first_byte_s)"
                 : (provider.name() == "local" ? "measured in process" : "measured on the streamed (SSE) reply")},
      {"time_to_first_byte_s", distribution_json(ttfb)},
      {"latency_s", distribution_json(latency)},
      {"wall_seconds", wall_s},
      {"usage", {{"prompt_tokens", usage.prompt_tokens}, {"completion_tokens", usage.completion_tokens},
                 {"total_tokens", usage.total_tokens}}},
      {"cost_estimate", {{"price_per_1k_tokens", opts.price_per_1k_tokens}, {"total_tokens", usage.total_tokens},
                         {"cost", cost}, {"note", "PRICE_PER_1K_TOKENS x total tokens (prompt + completion)"}}},
      {"determinism", det},
      {"examples", examples}};
  if (from_cache > 0)
    body["requests"]["cache_note"] =
        "answers from the response cache carry the latency measured when they were first fetched";
  return body;
}

}  // namespace bkd

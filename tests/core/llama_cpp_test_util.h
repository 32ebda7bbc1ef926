#pragma once
// Real llama.cpp (node-llama-cpp's prebuilt CPU binaries, tests/tools/llama_cpp_run.mjs) as the
// independent reference for the llama.cpp export, and the engine-side numbers it is compared with.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/engine/engine.h"
#include "core/util/fs.h"

namespace bkd::test {

// Empty when llama.cpp can be run; otherwise why not (the test then skips with that line).
inline std::string llama_cpp_missing() {
  if (std::system("node --version >/dev/null 2>&1") != 0) return "node is not installed";
  const std::string mod = std::string(BKD_TEST_TOOLS_DIR) + "/node_modules/node-llama-cpp";
  if (!dir_exists(mod)) return "tests/tools/node_modules/node-llama-cpp is missing (bash scripts/setup.sh --test-tools)";
  return {};
}

#define BKD_REQUIRE_LLAMA_CPP()                         \
  do {                                                  \
    std::string why_ = ::bkd::test::llama_cpp_missing(); \
    if (!why_.empty()) GTEST_SKIP() << why_;            \
  } while (0)

struct LlamaCppComparison {
  int64_t positions = 0, top1_agree = 0;
  double max_logprob_diff = 0;  // over the engine's top candidates at every position
  int64_t prompts = 0, greedy_equal = 0, greedy_tokens = 0;
  int64_t texts = 0, texts_tokenized_equal = 0;  // llama.cpp's tokenizer vs the student's, when texts were given
  std::string release;
};

inline std::vector<float> log_softmax(const float* z, int64_t n) {
  const float mx = *std::max_element(z, z + n);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(static_cast<double>(z[i] - mx));
  const float lse = mx + static_cast<float>(std::log(s));
  std::vector<float> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = z[i] - lse;
  return out;
}

// Scores `windows` and greedily continues `prompts` by `greedy_tokens` in both the engine (A8) and
// llama.cpp, and compares: top-1 agreement per position, the largest |log p| difference over the
// engine's top-5 candidates, and prompts whose greedy continuations are identical; and, given texts
// with the student tokenizer's ids, which ones llama.cpp's tokenizer splits identically.
inline LlamaCppComparison compare_with_llama_cpp(const PackedModel& m, const std::string& gguf,
                                                 const std::vector<std::vector<int32_t>>& windows,
                                                 const std::vector<std::vector<int32_t>>& prompts, int greedy_tokens,
                                                 const std::string& dir, const std::vector<std::string>& texts = {},
                                                 const std::vector<std::vector<int32_t>>& text_ids = {}) {
  const int64_t V = m.cfg.vocab_size;
  EngineOptions eo;
  eo.mode = QuantMode::TernaryA8;
  eo.threads = 2;
  Engine eng(m, eo);
  nlohmann::json in = {{"threads", 2}, {"context", m.cfg.max_seq_len}};
  std::vector<std::vector<std::vector<float>>> engine_lp;  // [window][pos] top-5 log p
  std::vector<std::vector<int32_t>> engine_top1;
  for (const auto& w : windows) {
    std::vector<float> logits(static_cast<size_t>(w.size()) * V);
    eng.reset();
    eng.forward(w.data(), static_cast<int64_t>(w.size()), logits.data(), true);
    nlohmann::json cands = nlohmann::json::array();
    engine_lp.emplace_back();
    engine_top1.emplace_back();
    for (size_t p = 0; p < w.size(); ++p) {
      const std::vector<float> lp = log_softmax(logits.data() + p * V, V);
      std::vector<int32_t> order(static_cast<size_t>(V));
      for (int32_t i = 0; i < V; ++i) order[i] = i;
      std::partial_sort(order.begin(), order.begin() + 5, order.end(), [&](int32_t a, int32_t b) { return lp[a] > lp[b]; });
      order.resize(5);
      cands.push_back(order);
      std::vector<float> top;
      for (int32_t id : order) top.push_back(lp[id]);
      engine_lp.back().push_back(top);
      engine_top1.back().push_back(order[0]);
    }
    in["score"].push_back({{"tokens", w}, {"candidates", cands}});
  }
  std::vector<std::vector<int32_t>> engine_greedy;
  for (const auto& p : prompts) {
    std::vector<float> logits(static_cast<size_t>(V));
    eng.reset();
    eng.forward(p.data(), static_cast<int64_t>(p.size()), logits.data());
    std::vector<int32_t> gen;
    for (int i = 0; i < greedy_tokens; ++i) {
      const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      gen.push_back(next);
      eng.forward(&next, 1, logits.data());
    }
    engine_greedy.push_back(gen);
  }
  in["greedy"] = {{"prompts", prompts}, {"tokens", greedy_tokens}};
  in["tokenize"] = texts;

  const std::string in_path = dir + "/llama_in.json", out_path = dir + "/llama_out.json", err = dir + "/llama_err.txt";
  std::ofstream(in_path) << in.dump();
  const std::string cmd = "node '" + std::string(BKD_TEST_TOOLS_DIR) + "/llama_cpp_run.mjs' '" + gguf + "' '" + in_path +
                          "' '" + out_path + "' 2>'" + err + "'";
  LlamaCppComparison c;
  if (std::system(cmd.c_str()) != 0) {
    ADD_FAILURE() << "llama_cpp_run.mjs failed: " << read_file(err);
    return c;
  }
  const nlohmann::json out = nlohmann::json::parse(read_file(out_path));
  c.release = out.value("llama_cpp", "");
  for (size_t wi = 0; wi < windows.size(); ++wi) {
    const auto& s = out["score"][wi];
    for (size_t p = 0; p < windows[wi].size(); ++p) {
      ++c.positions;
      if (s["top1"][p].get<int32_t>() == engine_top1[wi][p]) ++c.top1_agree;
      for (size_t k = 0; k < 5; ++k) {
        const nlohmann::json& lp = s["logprobs"][p][k];  // null: llama.cpp's probability underflowed to 0
        c.max_logprob_diff = std::max(c.max_logprob_diff, lp.is_number() ? std::fabs(lp.get<double>() - engine_lp[wi][p][k])
                                                                         : std::numeric_limits<double>::infinity());
      }
    }
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto theirs = out["greedy"][i].get<std::vector<int32_t>>();
    ++c.prompts;
    c.greedy_tokens += static_cast<int64_t>(theirs.size());
    if (theirs == engine_greedy[i]) ++c.greedy_equal;
  }
  for (size_t i = 0; i < texts.size(); ++i) {
    ++c.texts;
    if (out["tokenized"][i].get<std::vector<int32_t>>() == text_ids[i]) ++c.texts_tokenized_equal;
  }
  return c;
}

}  // namespace bkd::test

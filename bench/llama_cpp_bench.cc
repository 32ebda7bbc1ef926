// The packed engine vs llama.cpp on the same exported student (not a test): prompt processing and
// greedy decode tokens/s at 1 and 2 threads, one run, same prompt. llama.cpp runs through
// tests/tools/llama_cpp_bench.mjs (node-llama-cpp 3.21.1's prebuilt CPU binaries); its rows give both
// the wall clock seen from node (with node-llama-cpp's per-token overhead) and llama.cpp's own
// counters (llama_perf_context). Both decode greedily; the table says whether they picked the same
// tokens. Figures are medians over --repeats.
//
// usage: llama_cpp_bench --model STUDENT.gguf --llama-model STUDENT-llama.cpp.gguf [--prompt-tokens N]
//                        [--new-tokens N] [--repeats R] [--json PATH]
// (bitnet-kde export, then export --format llama.cpp, of the same checkpoint; see docs/FORMAT.md)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "bench_flags.h"
#include "core/engine/engine.h"
#include "core/engine/gguf_model.h"
#include "core/report/report.h"
#include "core/util/fs.h"

using namespace bkd;

namespace {

struct Args {
  std::string model, llama_model, json;
  int64_t prompt_tokens = 128, new_tokens = 64;
  int repeats = 5;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a;
    for_each_flag(argc, argv, "llama_cpp_bench", [&](const std::string& name, const FlagValue& value) {
      if (name == "--model") a.model = value();
      else if (name == "--llama-model") a.llama_model = value();
      else if (name == "--prompt-tokens") a.prompt_tokens = std::stoll(value());
      else if (name == "--new-tokens") a.new_tokens = std::stoll(value());
      else if (name == "--repeats") a.repeats = std::stoi(value());
      else if (name == "--json") a.json = value();
      else return false;
      return true;
    });
    if (a.model.empty() || a.llama_model.empty()) throw std::runtime_error("--model and --llama-model are required");
    if (a.repeats < 1 || a.prompt_tokens < 1 || a.new_tokens < 1)
      throw std::runtime_error("--repeats, --prompt-tokens and --new-tokens must be at least 1");
    const PackedModel m = load_packed_model(a.model);
    const int64_t V = m.cfg.vocab_size;
    if (a.prompt_tokens + a.new_tokens + 1 > m.cfg.max_seq_len) throw std::runtime_error("prompt + new tokens exceed the context");
    std::mt19937 rng(7);  // speed does not depend on which tokens; seeded so runs repeat
    std::vector<int32_t> prompt(static_cast<size_t>(a.prompt_tokens));
    for (auto& t : prompt) t = static_cast<int32_t>(3 + rng() % static_cast<uint32_t>(V - 3));

    nlohmann::json rows = nlohmann::json::array();
    std::vector<std::vector<int32_t>> engine_tokens;
    for (int threads : {1, 2}) {
      EngineOptions o;
      o.mode = QuantMode::TernaryA8;
      o.threads = threads;
      Engine e(m, o);
      std::vector<double> pre, dec;
      std::vector<int32_t> gen;
      std::vector<float> logits(static_cast<size_t>(V));
      for (int r = 0; r < a.repeats; ++r) {
        e.reset();
        double t0 = now();
        e.forward(prompt.data(), a.prompt_tokens, logits.data());
        pre.push_back(now() - t0);
        gen.assign(1, static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
        t0 = now();
        for (int64_t i = 0; i < a.new_tokens; ++i) {
          e.forward(&gen.back(), 1, logits.data());
          gen.push_back(static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin()));
        }
        dec.push_back(now() - t0);
      }
      engine_tokens.emplace_back(gen.begin() + 1, gen.end());
      rows.push_back({{"runtime", "bitnet-kde engine (A8)"}, {"threads", threads},
                      {"prefill_tokens_per_s", a.prompt_tokens / median(pre)}, {"decode_tokens_per_s", a.new_tokens / median(dec)},
                      {"kernels", e.kernels().name}});
    }

    const char* tmpdir = std::getenv("TMPDIR");
    const std::string in = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/llama_cpp_bench_in." + std::to_string(::getpid()) + ".json";
    const std::string out = in + ".out";
    std::ofstream(in) << nlohmann::json({{"threads", {1, 2}}, {"prompt", prompt}, {"new_tokens", a.new_tokens}, {"repeats", a.repeats}}).dump();
    const std::string cmd = "node '" + std::string(BKD_SOURCE_DIR) + "/tests/tools/llama_cpp_bench.mjs' '" + a.llama_model + "' '" + in + "' '" + out + "'";
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("llama_cpp_bench.mjs failed (is node-llama-cpp installed? bash scripts/setup.sh --test-tools)");
    const nlohmann::json lj = nlohmann::json::parse(read_file(out));
    std::remove(in.c_str());
    std::remove(out.c_str());
    size_t k = 0;
    auto med = [](const nlohmann::json& v) {
      std::vector<double> x;
      for (const auto& e : v)
        if (e.is_number()) x.push_back(e.get<double>());
      return x.empty() ? 0.0 : median(x);
    };
    for (const auto& run : lj["runs"]) {
      const std::vector<int32_t> toks = run["tokens"].get<std::vector<int32_t>>();
      const std::string name = "llama.cpp " + lj["llama_cpp"].get<std::string>();
      const bool same = toks == engine_tokens[k];
      rows.push_back({{"runtime", name + " (wall clock in node)"}, {"threads", run["threads"]},
                      {"prefill_tokens_per_s", a.prompt_tokens / med(run["prefill_s"])},
                      {"decode_tokens_per_s", a.new_tokens / med(run["decode_s"])},
                      {"same_greedy_tokens_as_engine", same}});
      rows.push_back({{"runtime", name + " (its own counters)"}, {"threads", run["threads"]},
                      {"prefill_tokens_per_s", med(run["internal_prefill_tps"])},
                      {"decode_tokens_per_s", med(run["internal_decode_tps"])},
                      {"same_greedy_tokens_as_engine", same}});
      ++k;
    }
    std::printf("%-44s %7s %14s %14s\n", "runtime", "threads", "prompt tok/s", "decode tok/s");
    for (const auto& r : rows)
      std::printf("%-44s %7d %14.0f %14.0f%s\n", r["runtime"].get<std::string>().c_str(), r["threads"].get<int>(),
                  r["prefill_tokens_per_s"].get<double>(), r["decode_tokens_per_s"].get<double>(),
                  r.contains("same_greedy_tokens_as_engine") ? (r["same_greedy_tokens_as_engine"].get<bool>() ? "  (same tokens)" : "  (tokens differ)") : "");
    if (!a.json.empty()) {
      Report rep("llama_cpp_bench", nullptr);
      rep.body() = {{"bench", "llama_cpp"}, {"model", a.model}, {"llama_model", a.llama_model}, {"model_config", m.cfg},
                    {"prompt_tokens", a.prompt_tokens}, {"new_tokens", a.new_tokens}, {"repeats", a.repeats},
                    {"statistic", "median of repeats"}, {"rows", rows}};
      rep.write(a.json);
    }
    return 0;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "llama_cpp_bench: a numeric flag has a value that is not a number (%s)\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "llama_cpp_bench: %s\n", e.what());
    return 1;
  }
}

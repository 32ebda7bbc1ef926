// The dry-run machinery on a small shape (the full LLaMA-7B run is `make dryrun`, not a test).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/engine/dryrun.h"
#include "core/engine/engine.h"
#include "core/util/error.h"
#include "core/util/hash.h"

namespace bkd {
namespace {

ModelConfig small_shape() {
  ModelConfig c = llama7b_shape();
  c.d_model = 256;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 4;
  c.ffn_dim = 300;  // not a multiple of 256: padded rows
  c.vocab_size = 500;
  return c;
}

TEST(EngineDryrun, RandomPackedModelIsValidReproducibleAndUniform) {
  ThreadPool pool(2);
  const ModelConfig c = small_shape();
  const PackedModel a = make_random_packed_model(c, TableFormat::I8, 7, pool);
  const PackedModel b = make_random_packed_model(c, TableFormat::I8, 7, pool);
  const PackedModel d = make_random_packed_model(c, TableFormat::I8, 8, pool);
  EXPECT_NO_THROW(a.validate());
  int64_t counts[3] = {0, 0, 0};
  for (size_t l = 0; l < a.layers.size(); ++l) {
    const PackedLayer& L = a.layers[l];
    for (const TernaryMatrix* m : L.projections()) {
      EXPECT_NO_THROW(validate_ternary(*m, "random"));
      std::vector<int8_t> w(static_cast<size_t>(m->cols));
      for (int64_t n = 0; n < m->rows; ++n) {
        ASSERT_TRUE(unpack_ternary_row(*m, n, w.data()));
        for (int8_t v : w) ++counts[v + 1];
      }
    }
    const auto bytes = [](const TernaryMatrix& m) { return std::string(reinterpret_cast<const char*>(m.packed.data()), m.bytes()); };
    EXPECT_EQ(bytes(L.w_down), bytes(b.layers[l].w_down));
    EXPECT_NE(bytes(L.w_down), bytes(d.layers[l].w_down));
  }
  const double total = static_cast<double>(counts[0] + counts[1] + counts[2]);
  for (int64_t c3 : counts) EXPECT_NEAR(static_cast<double>(c3) / total, 1.0 / 3.0, 0.01);
}

TEST(EngineDryrun, SmallShapeRunPassesItsChecksAndReportsEveryField) {
  for (int bits : {8, 16}) {
    DryrunOptions o;
    o.shape = small_shape();
    o.prompt_tokens = 5;
    o.decode_tokens = 2;
    o.embed_bits = bits;
    o.threads = 2;
    const nlohmann::json j = run_dryrun(o);
    EXPECT_TRUE(j["success"].get<bool>()) << j["checks"].dump();
    const ModelConfig c = small_shape();
    const int64_t D = c.d_model, F = c.ffn_dim;
    const int64_t rb_d = (D + 255) / 256 * 64, rb_f = (F + 255) / 256 * 64;
    const int64_t ternary = c.n_layers * (4 * D * rb_d + 2 * F * rb_d + D * rb_f);
    EXPECT_EQ(j["weight_bytes"]["ternary_packed"].get<int64_t>(), ternary);
    EXPECT_EQ(j["weight_bytes"]["embedding"].get<int64_t>(), c.vocab_size * D * (bits / 8) + (bits == 8 ? c.vocab_size * 4 : 0));
    for (const char* mode : {"a8", "a4"}) {
      const auto& m = j[mode];
      ASSERT_EQ(m["layers"].size(), 2u);
      EXPECT_EQ(m["decode_step_seconds"].size(), 2u);
      EXPECT_EQ(m["greedy_tokens"].size(), 3u);
      EXPECT_GT(m["prefill_s_per_token"].get<double>(), 0.0);
      // The prompt's tokens/s over decode's: the two figures the report already holds, divided.
      EXPECT_NEAR(m["prefill_to_decode_speed"].get<double>(),
                  m["prefill_tokens_per_s"].get<double>() * m["decode_s_per_token_median"].get<double>(), 1e-9 * m["prefill_to_decode_speed"].get<double>());
      EXPECT_EQ(m["prefill_to_decode_target"].get<double>(), 8.0);
      EXPECT_EQ(m["prefill_to_decode_target_met"].get<bool>(), m["prefill_to_decode_speed"].get<double>() >= 8.0);
      for (const auto& layer : m["layers"])
        for (const char* p : {"wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down"}) {
          const auto& s = layer[p];
          const bool four = std::string(mode) == "a4" && std::string(p) != "wo" && std::string(p) != "w_down";
          EXPECT_EQ(s["bits"].get<int>(), four ? 4 : 8) << mode << " " << p;
          EXPECT_GE(s["code_min"].get<int>(), four ? -8 : -128);
          EXPECT_LE(s["code_max"].get<int>(), four ? 7 : 127);
          EXPECT_LE(s["acc_max_abs"].get<int64_t>(), s["acc_bound"].get<int64_t>());
          EXPECT_EQ(s["acc_bound"].get<int64_t>(), s["in_features"].get<int64_t>() * (four ? 8 : 128));
          EXPECT_TRUE(s["acc_no_overflow"].get<bool>());
        }
    }
    const auto& cos = j["agreement"]["final_hidden_cosine_per_position"];
    ASSERT_EQ(cos.size(), 5u);
    for (const auto& v : cos) {
      EXPECT_GT(v.get<double>(), 0.5);  // 4-bit noise, not garbage
      EXPECT_LE(v.get<double>(), 1.0 + 1e-9);
    }
    // Timing at 1 thread and at the configured 2, each with a probe/step pair per decode step.
    const auto& per = j["bandwidth"]["per_threads"];
    ASSERT_EQ(per.size(), 2u);
    EXPECT_EQ(per[0]["threads"].get<int>(), 1);
    EXPECT_EQ(per[1]["threads"].get<int>(), 2);
    for (const auto& v : per)
      for (const char* mode : {"a8", "a4"}) {
        EXPECT_EQ(v[mode]["step_to_floor_ratios"].size(), 2u);
        EXPECT_GT(v[mode]["probe_gbps_median"].get<double>(), 0.0);
        EXPECT_GT(v[mode]["step_to_floor_ratio_median"].get<double>(), 0.0);
        // Each pair's floor comes from the faster of its two probes.
        const auto& gbps = v[mode]["probe_gbps"];
        const auto& plain = v[mode]["plain_read_gbps"];
        const auto& pattern = v[mode]["kernel_pattern_read_gbps"];
        ASSERT_EQ(plain.size(), gbps.size());
        ASSERT_EQ(pattern.size(), gbps.size());
        for (size_t i = 0; i < gbps.size(); ++i)
          EXPECT_EQ(gbps[i].get<double>(), std::max(plain[i].get<double>(), pattern[i].get<double>())) << mode << " pair " << i;
        // Where the steps' time went, against the probe's regions over the same bytes.
        EXPECT_GT(v[mode]["projections_vs_probe_median"].get<double>(), 0.0);
        EXPECT_GT(v[mode]["head_vs_probe_median"].get<double>(), 0.0);
        EXPECT_GE(v[mode]["between_regions_ms_median"].get<double>(), 0.0);
      }
    // The probe streams the packed weights and the head table: every byte a step reads but one
    // embedding row and the KV cache.
    const double head = static_cast<double>(j["weight_bytes"]["embedding"].get<int64_t>());  // tied
    EXPECT_EQ(j["bandwidth"]["probe_bytes"].get<double>(), static_cast<double>(ternary) + head - (bits == 8 ? c.vocab_size * 4 : 0));
    EXPECT_GT(j["memory"]["peak_rss_bytes"].get<int64_t>(), 0);
  }
}

TEST(EngineDryrun, BadOptionsSayWhichSettingToFix) {
  DryrunOptions o;
  o.shape = small_shape();
  o.embed_bits = 4;
  try {
    run_dryrun(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(e.hint().find("DRYRUN_EMBED_BITS"), std::string::npos);
  }
}

TEST(EngineDryrun, CliWritesTheReport) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("bkd_dryrun_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  const std::string cmd = "REPORTS_DIR=" + dir.string() + " DRYRUN_PROMPT_TOKENS=3 DRYRUN_DECODE_TOKENS=1 " +
                          BKD_CLI_PATH + " dryrun --d-model 128 --layers 1 --heads 2 --ffn 200 --vocab 300 > " +
                          (dir.string() + ".log") + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::ifstream in(dir / "dryrun_7b.json");
  ASSERT_TRUE(in.good());
  nlohmann::json j;
  in >> j;
  EXPECT_EQ(j["_meta"]["report"], "dryrun_7b");
  EXPECT_TRUE(j["success"].get<bool>());
  EXPECT_EQ(j["settings"]["prompt_tokens"].get<int>(), 3);
  EXPECT_EQ(j["shape"]["d_model"].get<int>(), 128);
  fs::remove_all(dir);
  fs::remove(dir.string() + ".log");
}

}  // namespace
}  // namespace bkd

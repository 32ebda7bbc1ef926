// The LibTorch teacher's vectorized top-K scoring (score_top_k: softmax, top-K, Other, rank next to
// the forward pass) against the reference the local provider computes from the full logits in double
// precision (log_softmax, top_k_indices, log_other_exact): same candidates, same values.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "core/config/settings.h"
#include "core/teacher/local_model.h"
#include "core/teacher/local_provider.h"
#include "core/teacher/logprob_math.h"
#include "core/util/fs.h"
#include "torch/checkpoint.h"
#include "torch/model_api.h"

using namespace bkd;

namespace {

struct TeacherDir {
  std::string root;
  TeacherDir() {
    std::string tmpl = "/tmp/bkd_topk_XXXXXX";
    root = ::mkdtemp(tmpl.data()) ? tmpl : throw std::runtime_error("mkdtemp failed");
  }
  ~TeacherDir() { std::filesystem::remove_all(root); }
};

// A small random full-precision teacher over the GPT-2 vocabulary, loaded through the real loader.
std::unique_ptr<LocalLanguageModel> random_teacher(const TeacherDir& d) {
  ModelConfig c;
  c.vocab_size = 50257, c.d_model = 32, c.n_layers = 1, c.n_heads = 4, c.n_kv_heads = 4, c.ffn_dim = 64;
  c.max_seq_len = 64, c.bitlinear = false;
  torch::manual_seed(3);
  Transformer model(c, QuantMode::FullPrecision);
  // Larger output weights than the initialization gives: peaked distributions, so some rows put
  // nearly all their mass in the top-K (the case where 1 - top mass would lose Other).
  {
    torch::NoGradGuard ng;
    for (auto& p : model->named_parameters())
      if (p.key().find("embed") != std::string::npos) p.value().mul_(200.0);
  }
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.0));
  save_checkpoint(join_path(d.root, "teacher"), 0, model, opt,
                  {{"model_config", c}, {"quant_mode", to_string(QuantMode::FullPrecision)}}, 1);
  write_file_atomic(join_path(d.root, ".env"), "");
  LoadOptions o;
  o.env_file = join_path(d.root, ".env");
  o.presets_dir = std::string(BKD_SOURCE_DIR) + "/configs";
  o.use_process_env = false;
  o.env = {{"DRIVE_ROOT", d.root}, {"CKPT_DIR", d.root}, {"ASSETS_DIR", std::string(BKD_SOURCE_DIR) + "/.assets"}};
  return make_torch_teacher(Settings::load(o), "topk-test");
}

}  // namespace

TEST(TeacherTopK, VectorizedScoringEqualsTheDoublePrecisionReference) {
  TeacherDir d;
  std::shared_ptr<LocalLanguageModel> teacher = random_teacher(d);
  ASSERT_TRUE(teacher);
  const std::string text = "Knowledge distillation trains a small student on a teacher's distribution, caf\xc3\xa9.";
  const auto ids = teacher->tokenizer().encode_ids(text);
  ASSERT_GE(ids.size(), 10u);
  const auto rows = teacher->sequence_logits(ids);
  double max_top_mass = 0;
  for (int k : {1, 5, 20}) {
    SCOPED_TRACE("k=" + std::to_string(k));
    TopKScores fast;
    ASSERT_TRUE(teacher->score_top_k(ids, k, fast));
    ASSERT_EQ(fast.k, k);
    ASSERT_EQ(fast.log_other.size(), ids.size() - 1);
    for (size_t i = 0; i + 1 < ids.size(); ++i) {
      const auto lp = log_softmax(rows[i], 1.0);
      const auto idx = top_k_indices(lp, k);
      double mass = 0;
      for (int j = 0; j < k; ++j) {
        EXPECT_EQ(fast.ids[i * k + j], idx[j]) << "row " << i << " rank " << j;
        EXPECT_NEAR(fast.logprobs[i * k + j], lp[idx[j]], 2e-5) << "row " << i;
        mass += std::exp(lp[idx[j]]);
      }
      max_top_mass = std::max(max_top_mass, mass);
      const double other = log_other_exact(lp, idx);
      // Relative to the Other mass itself, also where the top-K holds nearly everything.
      EXPECT_NEAR(std::exp(fast.log_other[i] - other), 1.0, 1e-3) << "row " << i << " Other " << other;
      EXPECT_NEAR(fast.next_logprob[i], lp[ids[i + 1]], 2e-5);
      int rank = 1;
      for (double v : lp) rank += v > lp[ids[i + 1]];
      EXPECT_EQ(fast.next_rank[i], rank);
    }
  }
  EXPECT_GT(max_top_mass, 0.999);  // the peaked case was exercised
  // The provider uses it: same tokens and candidates as its reference path would give.
  LocalProvider provider(teacher);
  Scoring sc = provider.score(text, 5);
  ASSERT_EQ(sc.tokens.size(), ids.size());
  for (size_t i = 1; i < ids.size(); ++i) {
    const auto lp = log_softmax(rows[i - 1], 1.0);
    ASSERT_EQ(sc.tokens[i].top.size(), 5u);
    EXPECT_EQ(sc.tokens[i].top[0].id, top_k_indices(lp, 1)[0]);
    EXPECT_EQ(sc.tokens[i].top[0].bytes, teacher->tokenizer().decode({sc.tokens[i].top[0].id}));
    EXPECT_NEAR(sc.tokens[i].logprob, lp[ids[i]], 2e-5);
  }
}

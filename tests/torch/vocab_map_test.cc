#include "torch/model/vocab_map.h"
#include "torch/train/mapped_batches.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "core/data/token_file.h"
#include "core/util/error.h"
#include "torch/model/model_api.h"
#include "torch/train/trainer.h"

namespace bkd {
namespace {
namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("bkd_vocab_map_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

TEST(TorchVocabMap, KeepsIdsSeenOftenEnoughPlusTheAlwaysIds) {
  const std::string dir = temp_dir("counts");
  const std::string path = dir + "/train.tok";
  // counts: 3 -> 3, 5 -> 2, 7 -> 1, 9 -> 1; vocabulary 12; 11 never occurs but is always kept.
  write_token_file(path, {{3, 5, 7, 3}, {9, 3, 5}}, 12, "h");
  TokenFile f(path);
  VocabMap m = VocabMap::from_token_counts(f, 2, {11});
  EXPECT_EQ(m.full_size, 12);
  EXPECT_EQ(m.kept, (std::vector<int32_t>{3, 5, 11}));
  EXPECT_EQ(m.rare_count(), 9);
  EXPECT_EQ(m.model_vocab(), 4);  // three kept + the rare class
  VocabMap all = VocabMap::from_token_counts(f, 1);
  EXPECT_EQ(all.kept, (std::vector<int32_t>{3, 5, 7, 9}));
  EXPECT_THROW(VocabMap::from_token_counts(f, 0), Error);
  EXPECT_THROW(VocabMap::from_token_counts(f, 2, {12}), Error);
}

TEST(TorchVocabMap, IdsMapInAndLogitsExpandToAProperDistribution) {
  VocabMap m;
  m.full_size = 10;
  m.kept = {0, 2, 3, 8};  // classes 0..3; class 4 = rare (ids 1, 4, 5, 6, 7, 9)
  torch::Tensor ids = torch::tensor({{8, 1, 0}, {9, 3, 2}}, torch::kLong);
  torch::Tensor mapped = m.to_model(ids);
  EXPECT_TRUE(torch::equal(mapped, torch::tensor({{3, 4, 0}, {4, 2, 1}}, torch::kLong)));
  EXPECT_THROW(m.to_model(torch::tensor({10}, torch::kLong)), Error);
  EXPECT_THROW(m.to_model(torch::tensor({-1}, torch::kLong)), Error);

  torch::manual_seed(3);
  torch::Tensor logits = torch::randn({2, 3, 5}, torch::kDouble);
  torch::Tensor full = m.expand_logits(logits);
  ASSERT_EQ(full.sizes(), (std::vector<int64_t>{2, 3, 10}));
  // Independent check in probability space: P(kept id) = P(its class), P(rare id) = P(rare) / 6.
  torch::Tensor pc = torch::softmax(logits, -1), pf = torch::softmax(full, -1);
  const std::vector<int> cls = {0, 4, 1, 2, 4, 4, 4, 4, 3, 4};
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t t = 0; t < 3; ++t) {
      double total = 0;
      for (int v = 0; v < 10; ++v) {
        const double want = pc[b][t][cls[v]].item<double>() / (cls[v] == 4 ? 6.0 : 1.0);
        EXPECT_NEAR(pf[b][t][v].item<double>(), want, 1e-12) << "id " << v;
        total += pf[b][t][v].item<double>();
      }
      EXPECT_NEAR(total, 1.0, 1e-12);
    }
  EXPECT_THROW(m.expand_logits(torch::zeros({2, 4})), Error);

  // Every id kept: no rare class, expansion is a permutation-free identity.
  VocabMap id;
  id.full_size = 3, id.kept = {0, 1, 2};
  EXPECT_EQ(id.model_vocab(), 3);
  torch::Tensor l3 = torch::randn({4, 3});
  EXPECT_TRUE(torch::equal(id.expand_logits(l3), l3));
}

TEST(TorchVocabMap, JsonRoundTripAndDamagedMapsAreRejected) {
  VocabMap m;
  m.full_size = 50, m.kept = {1, 7, 49};
  VocabMap r = VocabMap::from_json(m.to_json());
  EXPECT_EQ(r.full_size, 50);
  EXPECT_EQ(r.kept, m.kept);
  EXPECT_THROW(VocabMap::from_json({{"full_size", 50}, {"kept", {7, 1}}}), Error);
  EXPECT_THROW(VocabMap::from_json({{"full_size", 50}, {"kept", {1, 50}}}), Error);
  EXPECT_THROW(VocabMap::from_json({{"kept", {1}}}), std::exception);
}

TEST(TorchVocabMap, TrainedTeacherWithATrimmedHeadServesFullVocabularyLogits) {
  // External vocabulary 60; the data uses ids 10..29 only (20 kept ids + the rare class = 21 classes).
  std::mt19937_64 rng(4);
  std::vector<std::vector<int32_t>> docs(6);
  for (auto& d : docs)
    for (int i = 0; i < 80; ++i) d.push_back(int32_t(10 + rng() % 20));
  VocabMap map;
  map.full_size = 60;
  for (int32_t v = 10; v < 30; ++v) map.kept.push_back(v);

  TrainOptions o;
  o.role = "teacher";
  o.model.vocab_size = map.model_vocab(), o.model.d_model = 32, o.model.n_layers = 1, o.model.n_heads = 4;
  o.model.n_kv_heads = 4, o.model.ffn_dim = 48, o.model.max_seq_len = 32, o.model.bitlinear = false;
  o.start_mode = QuantMode::FullPrecision, o.flip_enabled = false;
  o.seq_len = 16, o.batch_size = 2, o.budget_tokens = 4 * 32;
  o.threads = 1, o.precision = "fp32", o.device = "cpu", o.progress = false;
  o.ckpt_dir = temp_dir("teacher");
  o.extra_state["vocab_map"] = map.to_json();
  auto data = map_batches(std::make_unique<TokenWindowSource>(docs, 16, 2, -1, 1), map);
  TrainResult res = train(o, *data);
  ASSERT_TRUE(res.finished);

  LoadedModel lm = load_model(o.role_dir());
  ASSERT_TRUE(lm.vocab_map.enabled());
  EXPECT_EQ(lm.vocab_size(), 60);
  EXPECT_EQ(lm.config.vocab_size, 21);
  const std::vector<int32_t> ids = {12, 29, 55, 10};  // 55 is rare: it shares the rare class's input row
  torch::Tensor full = forward_logits(lm, ids);
  ASSERT_EQ(full.sizes(), (std::vector<int64_t>{4, 60}));
  torch::NoGradGuard ng;
  torch::Tensor compact =
      lm.model->forward(torch::tensor({2, 19, 20, 0}, torch::kLong).view({1, -1}))[0].to(torch::kFloat);
  EXPECT_TRUE(torch::allclose(full.index_select(1, torch::arange(10, 30)), compact.narrow(1, 0, 20)));
  torch::Tensor rare = compact.select(1, 20) - std::log(40.0);
  for (int v : {0, 9, 30, 59}) EXPECT_TRUE(torch::allclose(full.select(1, v), rare));
  EXPECT_NEAR(torch::softmax(full.to(torch::kDouble), -1).sum(-1).sub(1).abs().max().item<double>(), 0.0, 1e-6);
  EXPECT_THROW(forward_logits(lm, {60}), Error);
}

}  // namespace
}  // namespace bkd

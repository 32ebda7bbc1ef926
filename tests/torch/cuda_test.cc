// The CUDA path: device placement, fp16 autocast with the dynamic loss scaler, and checkpoints that
// move between devices. Skipped (not passed) on machines without a CUDA device, which CI is.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "torch/model/model.h"
#include "torch/model/model_api.h"
#include "torch/train/trainer.h"
#include "train_test_util.h"

namespace bkd {
namespace {
namespace fs = std::filesystem;

#define REQUIRE_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device visible to LibTorch"

std::string temp_dir(const std::string& name) { return test::fresh_dir("bkd_cuda_", name); }

std::vector<std::vector<int32_t>> patterned_docs(int64_t vocab, int n_docs, int len, uint64_t seed) {
  return test::patterned_docs(vocab, n_docs, len, seed, 7, 3);
}

TrainOptions cuda_options(const std::string& dir) {
  TrainOptions o;
  o.model.vocab_size = 64, o.model.d_model = 64, o.model.n_layers = 2, o.model.n_heads = 4, o.model.n_kv_heads = 2;
  o.model.ffn_dim = 96, o.model.max_seq_len = 32;
  o.seq_len = 32, o.batch_size = 4, o.grad_accum = 1;
  o.budget_tokens = 40 * o.tokens_per_step();
  o.flip_at = 0.9;
  o.schedule.lr = 3e-3, o.schedule.warmup_steps = 4;
  o.ckpt_every = 10, o.ckpt_keep = 2;
  o.device = "cuda", o.precision = "fp16";
  o.ckpt_dir = dir, o.progress = false, o.seed = 11;
  return o;
}

TEST(TorchCuda, ForwardOnTheGpuMatchesTheCpuForwardInFloat32) {
  REQUIRE_CUDA();
  ModelConfig c;
  c.vocab_size = 64, c.d_model = 64, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.ffn_dim = 96, c.max_seq_len = 32;
  c.bitlinear = true;
  torch::manual_seed(3);
  Transformer cpu(c, QuantMode::TernaryA8);
  Transformer gpu(c, QuantMode::TernaryA8);
  {
    torch::NoGradGuard ng;
    auto src = cpu->named_parameters();
    for (auto& p : gpu->named_parameters()) p.value().copy_(src[p.key()]);
  }
  gpu->to(torch::kCUDA);
  auto ids = torch::randint(0, 64, {2, 32}, torch::kLong);
  for (QuantMode m : {QuantMode::TernaryA8, QuantMode::TernaryA4}) {
    cpu->set_quant_mode(m);
    gpu->set_quant_mode(m);
    cpu->eval(), gpu->eval();
    torch::NoGradGuard ng;
    auto a = cpu->forward(ids);
    auto b = gpu->forward(ids.to(torch::kCUDA)).to(torch::kCPU);
    EXPECT_EQ(b.device().type(), torch::kCPU);
    // Quantizers round; a rare half-way activation may round differently, so compare the bulk.
    auto diff = (a - b).abs();
    EXPECT_LT(diff.median().item<double>(), 1e-4) << to_string(m);
    EXPECT_GT((a.argmax(-1) == b.argmax(-1)).to(torch::kFloat).mean().item<double>(), 0.97) << to_string(m);
  }
}

TEST(TorchCuda, Fp16AutocastTrainingLearnsScalesAndSkipsNonFiniteSteps) {
  REQUIRE_CUDA();
  auto docs = patterned_docs(64, 16, 200, 4);
  TrainOptions o = cuda_options(temp_dir("fp16"));
  o.inject_nonfinite_at = {12};
  o.scaler_growth_interval = 5;
  TokenWindowSource data(docs, o.seq_len, o.batch_size, 63, 1);
  TrainResult r = train(o, data);
  ASSERT_TRUE(r.finished);
  EXPECT_EQ(r.health["device"].get<std::string>(), "cuda");
  EXPECT_GE(r.skipped_steps, 1);  // the injected step; a scale that starts too high may cost a few more
  EXPECT_EQ(r.nan_count, 0);  // an overflow the scaler handles is not a NaN
  ASSERT_EQ(r.records.size(), 40u);
  const auto& bad = r.records[12];
  EXPECT_TRUE(bad.skipped);
  EXPECT_LT(r.records[13].scale, r.records[11].scale);  // backed off
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) first += r.records[i].ce, last += r.records[35 + i].ce;
  EXPECT_LT(last, first * 0.8) << "fp16 CUDA training did not learn";
  for (const auto& s : r.records) EXPECT_TRUE(std::isfinite(s.loss)) << s.step;
  EXPECT_TRUE(r.flipped);
}

TEST(TorchCuda, CheckpointFromAGpuRunLoadsOnTheCpuAndResumesOnTheGpu) {
  REQUIRE_CUDA();
  auto docs = patterned_docs(64, 16, 200, 5);
  const std::string dir = temp_dir("resume");
  TrainOptions o = cuda_options(dir);
  o.budget_tokens = 20 * o.tokens_per_step();
  o.stop_after_steps = 10;
  TokenWindowSource d1(docs, o.seq_len, o.batch_size, 63, 2);
  TrainResult part = train(o, d1);
  EXPECT_FALSE(part.finished);

  LoadedModel m = load_model(o.role_dir());  // CPU inference of a GPU-trained checkpoint
  auto logits = forward_logits(m, {1, 2, 3, 4, 5});
  EXPECT_EQ(logits.device().type(), torch::kCPU);
  EXPECT_TRUE(torch::isfinite(logits).all().item<bool>());

  o.stop_after_steps = -1;
  o.resume = true;
  TokenWindowSource d2(docs, o.seq_len, o.batch_size, 63, 2);
  TrainResult rest = train(o, d2);
  ASSERT_TRUE(rest.finished);
  EXPECT_EQ(rest.records.front().step, 10);
  EXPECT_EQ(rest.seen_tokens, o.budget_tokens);
}

}  // namespace
}  // namespace bkd

// Parity of the packed engine (core, no LibTorch) with the LibTorch student it will serve: the same
// latent weights, the training-time fake-quant forward (Transformer::forward) vs the engine's
// integer kernels, in A8 and in the A4 hybrid, tied and untied heads.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "core/engine/engine.h"
#include "core/engine/sampler.h"
#include "torch/engine_export.h"
#include "torch/model.h"

namespace bkd {
namespace {

class EngineParity : public ::testing::TestWithParam<std::tuple<QuantMode, bool>> {};

TEST_P(EngineParity, EngineLogitsMatchTheTorchFakeQuantForward) {
  const auto [mode, tied] = GetParam();
  torch::manual_seed(1234);
  ModelConfig c;
  c.vocab_size = 300;
  c.d_model = 128;
  c.n_layers = 3;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.ffn_dim = 200;
  c.max_seq_len = 64;
  c.tie_embeddings = tied;
  Transformer m(c, mode);
  m->eval();
  torch::NoGradGuard no_grad;
  // Norm gains away from 1 so their placement matters.
  for (auto& p : m->named_parameters())
    if (p.key().find("norm") != std::string::npos) p.value().uniform_(0.5, 1.5);
  const int64_t T = 48;
  torch::Tensor ids = torch::randint(0, c.vocab_size, {1, T}, torch::kLong);
  torch::Tensor ref = m->forward(ids).to(torch::kFloat).contiguous().view({T, c.vocab_size});

  const PackedModel pm = pack_model(float_weights_of(m));
  EngineOptions o;
  o.mode = mode;
  o.threads = 2;
  Engine e(pm, o);
  std::vector<int32_t> tokens(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) tokens[t] = static_cast<int32_t>(ids[0][t].item<int64_t>());
  std::vector<float> logits(static_cast<size_t>(T * c.vocab_size));
  e.forward(tokens.data(), T, logits.data(), true);

  const float* r = ref.data_ptr<float>();
  double worst = 0, scale = 0;
  int64_t agree = 0;
  for (int64_t i = 0; i < T * c.vocab_size; ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(logits[i]) - r[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(r[i])));
  }
  for (int64_t t = 0; t < T; ++t)
    agree += argmax(logits.data() + t * c.vocab_size, c.vocab_size) == argmax(r + t * c.vocab_size, c.vocab_size);
  std::printf("[parity %s %s] argmax agreement %lld/%lld, max |logit diff| %.3g (max |logit| %.3g)\n",
              to_string(mode).c_str(), tied ? "tied" : "untied", static_cast<long long>(agree),
              static_cast<long long>(T), worst, scale);
  EXPECT_GE(static_cast<double>(agree) / static_cast<double>(T), 0.995);
  // Same quantized integers on both sides; the rest is float rounding order (~1e-6 relative).
  EXPECT_LT(worst, 1e-3 * scale + 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Modes, EngineParity,
                         ::testing::Combine(::testing::Values(QuantMode::TernaryA8, QuantMode::TernaryA4), ::testing::Bool()),
                         [](const auto& info) {
                           return to_string(std::get<0>(info.param)) + (std::get<1>(info.param) ? "_tied" : "_untied");
                         });

}  // namespace
}  // namespace bkd

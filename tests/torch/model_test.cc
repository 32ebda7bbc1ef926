#include "torch/model/model.h"

#include <gtest/gtest.h>

#include "torch/train/batch.h"
#include "torch/train/losses.h"
#include "core/util/error.h"
#include "torch_fixtures.h"

namespace bkd {
namespace {

ModelConfig tiny_config(const torch::Tensor& c) {
  auto a = c.accessor<int64_t, 1>();
  ModelConfig cfg;
  cfg.vocab_size = a[0], cfg.d_model = a[1], cfg.n_layers = a[2], cfg.n_heads = a[3], cfg.n_kv_heads = a[4];
  cfg.ffn_dim = a[5], cfg.max_seq_len = a[6], cfg.tie_embeddings = false, cfg.bitlinear = true;
  return cfg;
}

Transformer model_from_fixture(std::map<std::string, torch::Tensor>& f) {
  Transformer m(tiny_config(f["config"]), QuantMode::FullPrecision);
  torch::NoGradGuard ng;
  int copied = 0;
  for (auto& p : m->named_parameters()) {
    auto it = f.find("param." + p.key());
    if (it == f.end()) throw std::runtime_error("fixture lacks parameter " + p.key());
    p.value().copy_(it->second);
    ++copied;
  }
  EXPECT_EQ(copied, int(f.count("param.embed") + f.count("param.lm_head") + f.count("param.final_norm")) + 2 * 11);
  return m;
}

TEST(TorchModel, ForwardAndGradientsMatchPyTorchGolden) {
  BKD_NEED_FIXTURES();
  auto f = test::load_fixture("model");
  Transformer m = model_from_fixture(f);
  for (auto [mode, name] : {std::pair{QuantMode::FullPrecision, "fp"}, std::pair{QuantMode::TernaryA8, "a8"},
                            std::pair{QuantMode::TernaryA4, "a4"}}) {
    SCOPED_TRACE(name);
    m->set_quant_mode(mode);
    m->zero_grad();
    torch::Tensor logits = m->forward(f["ids"], f["key_valid"]);
    // fp32 on both sides; quantized modes add rare one-step rounding flips from summation order.
    const double tol = mode == QuantMode::FullPrecision ? 2e-5 : 2e-3;
    EXPECT_LT(test::rel_err(logits, f[std::string("logits.") + name]), tol);
    torch::Tensor loss = ce_loss(logits, f["targets"], f["key_valid"]);
    EXPECT_NEAR(loss.item<double>(), f[std::string("loss.") + name].item<double>(), 10 * tol);
    loss.backward();
    for (auto& p : m->named_parameters()) {
      const auto& want = f["grad." + std::string(name) + "." + p.key()];
      EXPECT_LT(test::rel_err(p.value().grad(), want), mode == QuantMode::FullPrecision ? 1e-4 : 2e-2) << p.key();
    }
  }
}

// Finite differences through the whole full-precision model in float64 (checks every backward that is
// not the identity: RMSNorm, RoPE, GQA, masked attention, the fused relu^2 gate).
TEST(TorchModel, FullPrecisionBackwardMatchesFiniteDifferences) {
  torch::manual_seed(11);
  ModelConfig cfg;
  cfg.vocab_size = 19, cfg.d_model = 16, cfg.n_layers = 2, cfg.n_heads = 4, cfg.n_kv_heads = 2, cfg.ffn_dim = 24;
  cfg.max_seq_len = 8, cfg.tie_embeddings = true, cfg.bitlinear = false;
  Transformer m(cfg, QuantMode::FullPrecision);
  m->to(torch::kDouble);
  torch::Tensor ids = torch::randint(0, 19, {2, 6}, torch::kLong);
  torch::Tensor kv = torch::ones({2, 6}, torch::kBool);
  kv[1][4] = false;
  torch::Tensor r = torch::randn({2, 6, 19}, torch::kDouble);
  auto objective = [&] { return (m->forward(ids, kv).to(torch::kDouble) * r).sum(); };
  m->zero_grad();
  objective().backward();
  for (auto& p : m->named_parameters()) {
    torch::Tensor flat = p.value().view({-1});
    torch::Tensor g = p.value().grad().view({-1});
    for (int64_t i = 0; i < flat.numel(); i += std::max<int64_t>(1, flat.numel() / 5)) {
      torch::NoGradGuard ng;
      const double h = 1e-6, orig = flat[i].item<double>();
      flat[i] = orig + h;
      const double up = objective().item<double>();
      flat[i] = orig - h;
      const double dn = objective().item<double>();
      flat[i] = orig;
      const double fd = (up - dn) / (2 * h);
      EXPECT_NEAR(g[i].item<double>(), fd, 1e-6 + 1e-5 * std::abs(fd)) << p.key() << "[" << i << "]";
    }
  }
}

TEST(TorchModel, Relu2GateBackwardMatchesFiniteDifferences) {
  torch::manual_seed(12);
  torch::Tensor g = torch::randn({4, 9}, torch::kDouble).requires_grad_(true);
  torch::Tensor u = torch::randn({4, 9}, torch::kDouble).requires_grad_(true);
  torch::Tensor r = torch::randn({4, 9}, torch::kDouble);
  (relu2_gate(g, u) * r).sum().backward();
  auto f = [&](const torch::Tensor& gg, const torch::Tensor& uu) {
    return (torch::relu(gg).pow(2) * uu * r).sum().item<double>();
  };
  torch::NoGradGuard ng;
  const double h = 1e-6;
  for (int64_t i = 0; i < 36; ++i) {
    torch::Tensor e = torch::zeros({36}, torch::kDouble);
    e[i] = h;
    e = e.view({4, 9});
    EXPECT_NEAR(g.grad().view({-1})[i].item<double>(), (f(g + e, u) - f(g - e, u)) / (2 * h), 1e-6);
    EXPECT_NEAR(u.grad().view({-1})[i].item<double>(), (f(g, u + e) - f(g, u - e)) / (2 * h), 1e-6);
  }
}

// A sequence's logits and loss do not depend on what else shares its batch, nor on padding.
TEST(TorchModel, OtherSequencesAndPaddingDoNotLeakIntoASequence) {
  torch::manual_seed(13);
  ModelConfig cfg;
  cfg.vocab_size = 50, cfg.d_model = 32, cfg.n_layers = 2, cfg.n_heads = 4, cfg.n_kv_heads = 2, cfg.ffn_dim = 40;
  cfg.max_seq_len = 16;
  for (QuantMode mode : {QuantMode::FullPrecision, QuantMode::TernaryA8, QuantMode::TernaryA4}) {
    SCOPED_TRACE(to_string(mode));
    Transformer m(cfg, mode);
    std::vector<int32_t> mine = {3, 14, 15, 9, 26, 5, 35, 8, 9};
    Batch alone = make_lm_batch({mine}, 8);
    Batch crowd = make_lm_batch({{1, 2, 3, 4, 5, 6, 7, 8, 9}, mine, {7, 7}, {}}, 8);
    Batch padded = make_lm_batch({mine}, 14);  // same tokens, 6 padding positions
    torch::NoGradGuard ng;
    torch::Tensor la = m->forward(alone.inputs, alone.key_valid)[0];
    torch::Tensor lc = m->forward(crowd.inputs, crowd.key_valid)[1];
    torch::Tensor lp = m->forward(padded.inputs, padded.key_valid)[0].narrow(0, 0, 8);
    EXPECT_LT(test::rel_err(lc, la), 1e-5);
    EXPECT_LT(test::rel_err(lp, la), 1e-5);
    // Left padding: the key-padding mask hides pad keys from real queries.
    torch::Tensor ids = torch::cat({torch::full({1, 3}, 42, torch::kLong), alone.inputs}, 1);
    torch::Tensor kv = torch::cat({torch::zeros({1, 3}, torch::kBool), alone.key_valid}, 1);
    torch::Tensor ll = m->forward(ids, kv)[0].narrow(0, 3, 8);
    // RoPE is relative, so shifting every real position by 3 leaves attention scores unchanged
    EXPECT_LT(test::rel_err(ll, la), 1e-4);
    LossWeights w;
    torch::Tensor s_alone = compute_losses(m->forward(alone.inputs, alone.key_valid), alone, w, {}).ce;
    torch::Tensor s_pad = compute_losses(m->forward(padded.inputs, padded.key_valid), padded, w, {}).ce;
    EXPECT_NEAR(s_alone.item<double>(), s_pad.item<double>(), 1e-5);
    EXPECT_TRUE(torch::isfinite(m->forward(crowd.inputs, crowd.key_valid)).all().item<bool>());
  }
}

TEST(TorchModel, CachedDecodingMatchesTheFullForwardInEveryMode) {
  torch::manual_seed(17);
  ModelConfig cfg;
  cfg.vocab_size = 50, cfg.d_model = 32, cfg.n_layers = 2, cfg.n_heads = 4, cfg.n_kv_heads = 2, cfg.ffn_dim = 40;
  cfg.max_seq_len = 16;
  const torch::Tensor ids = torch::randint(0, 50, {1, 16}, torch::kLong);
  for (QuantMode mode : {QuantMode::FullPrecision, QuantMode::TernaryA8, QuantMode::TernaryA4}) {
    SCOPED_TRACE(to_string(mode));
    Transformer m(cfg, mode);
    m->eval();
    torch::NoGradGuard ng;
    const torch::Tensor full = m->forward(ids)[0];
    // A prefill of 5, single tokens, then a chunk of 4, then single tokens to the model's limit.
    KvCache cache;
    std::vector<torch::Tensor> rows;
    int64_t at = 0;
    for (int64_t n : {5, 1, 1, 4, 1, 1, 1, 1, 1}) {
      ASSERT_EQ(cache.length(), at);
      rows.push_back(m->forward_cached(ids.narrow(1, at, n), cache)[0]);
      at += n;
    }
    ASSERT_EQ(at, 16);
    const torch::Tensor cached = torch::cat(rows, 0);
    // Per-token quantizers see the same rows; only matmul blocking may round differently.
    const double tol = mode == QuantMode::FullPrecision ? 1e-5 : 1e-3;
    EXPECT_LT(test::rel_err(cached, full), tol);
    EXPECT_TRUE(torch::equal(cached.argmax(-1), full.argmax(-1)));
    // Truncating the cache and taking another branch equals the full forward of that branch.
    cache.truncate(7);
    torch::Tensor branch = ids.clone();
    branch.narrow(1, 7, 9).fill_(3);
    const torch::Tensor tail = m->forward_cached(branch.narrow(1, 7, 9), cache)[0];
    EXPECT_LT(test::rel_err(tail, m->forward(branch)[0].narrow(0, 7, 9)), tol);
    EXPECT_THROW(m->forward_cached(ids.narrow(1, 0, 1), cache), Error);  // 16 + 1 > max_seq_len
  }
}

TEST(TorchModel, InferenceWeightCacheChangesNoLogitAndIsRefusedInTraining) {
  torch::manual_seed(23);
  ModelConfig cfg;
  cfg.vocab_size = 50, cfg.d_model = 32, cfg.n_layers = 2, cfg.n_heads = 4, cfg.n_kv_heads = 2, cfg.ffn_dim = 40;
  cfg.max_seq_len = 16;
  const torch::Tensor ids = torch::randint(0, 50, {2, 12}, torch::kLong);
  for (QuantMode mode : {QuantMode::FullPrecision, QuantMode::TernaryA8, QuantMode::TernaryA4}) {
    SCOPED_TRACE(to_string(mode));
    Transformer m(cfg, mode);
    m->eval();
    torch::NoGradGuard ng;
    const torch::Tensor plain = m->forward(ids);
    m->cache_weights_for_inference();
    // The same matrices, computed once instead of per call: bit-identical logits.
    EXPECT_TRUE(torch::equal(m->forward(ids), plain));
    // A mode change drops the cache (it would hold the old mode's matrices).
    const QuantMode other = mode == QuantMode::TernaryA8 ? QuantMode::TernaryA4 : QuantMode::TernaryA8;
    m->set_quant_mode(other);
    const torch::Tensor other_plain = m->forward(ids);
    m->cache_weights_for_inference();
    EXPECT_TRUE(torch::equal(m->forward(ids), other_plain));
    m->train();
    EXPECT_THROW(m->forward(ids), Error);
    m->drop_inference_cache();
    EXPECT_NO_THROW(m->forward(ids));
  }
}

TEST(TorchModel, ParameterCountMatchesConfigAndRejectsBadShapes) {
  ModelConfig cfg;
  cfg.vocab_size = 100, cfg.d_model = 32, cfg.n_layers = 3, cfg.n_heads = 4, cfg.n_kv_heads = 2, cfg.ffn_dim = 40;
  for (bool tie : {true, false}) {
    cfg.tie_embeddings = tie;
    Transformer m(cfg, QuantMode::TernaryA8);
    int64_t n = 0;
    for (const auto& p : m->parameters()) n += p.numel();
    EXPECT_EQ(n, cfg.parameter_count()) << "tie=" << tie;  // GQA: k/v are [kv_heads*head_dim, d]
  }
  cfg.bitlinear = false;
  EXPECT_THROW(Transformer(cfg, QuantMode::TernaryA8), Error);
  Transformer m(cfg, QuantMode::FullPrecision);
  EXPECT_THROW(m->forward(torch::zeros({1, cfg.max_seq_len + 1}, torch::kLong)), Error);
}

}  // namespace
}  // namespace bkd

#include "torch/train/losses.h"

#include <gtest/gtest.h>

#include "core/util/error.h"
#include "torch/kernels/kd_buckets.h"
#include "torch/kernels/softmax_kernels.h"
#include "torch/kernels/token_nll.h"
#include "torch_fixtures.h"

namespace bkd {
namespace {

TEST(TorchLosses, KdLossAndGradientMatchFloat64Golden) {
  BKD_NEED_FIXTURES();
  auto f = test::load_fixture("kd");
  for (int T : {1, 2}) {
    SCOPED_TRACE(T);
    torch::Tensor z = f["logits"].clone().requires_grad_(true);
    torch::Tensor loss = kd_loss(z, f["ids"], f["logprobs"], f["other"], f["valid"], double(T));
    loss.backward();
    const std::string key = "T" + std::to_string(T);
    // float32 vs float64 reference over V = 50: a few float ulps of the log-sum-exps
    EXPECT_NEAR(loss.item<double>(), f[key + "_loss"].item<double>(), 1e-5 * (1 + f[key + "_loss"].item<double>()));
    EXPECT_LT(test::rel_err(z.grad(), f[key + "_grad"]), 1e-5);
    // invalid rows get no gradient
    EXPECT_EQ(z.grad()[2].abs().sum().item<float>(), 0.0f);
    EXPECT_EQ(z.grad()[6].abs().sum().item<float>(), 0.0f);
  }
}

// The tempered loss's minimum is the teacher's buckets, at any T: a student whose K+1 bucket
// distribution (at T = 1) equals the teacher's has zero loss and zero gradient at T = 2 and 4. (With
// the student tempered over its whole vocabulary instead, its Other bucket is the tempered mass of
// the complement, which the teacher's top-K cannot see: the loss here is then positive; this test
// fails on that definition.)
TEST(TorchLosses, TemperedKlIsZeroWhenTheStudentsBucketsAreTheTeachers) {
  torch::manual_seed(5);
  const int64_t N = 6, V = 40, K = 4;
  torch::Tensor z = (torch::randn({N, V}) * 3).requires_grad_(true);
  torch::Tensor ids = torch::stack({torch::randperm(V).narrow(0, 0, K), torch::randperm(V).narrow(0, 0, K),
                                    torch::randperm(V).narrow(0, 0, K), torch::randperm(V).narrow(0, 0, K),
                                    torch::randperm(V).narrow(0, 0, K), torch::randperm(V).narrow(0, 0, K)});
  ids[3][3] = -1;  // a padded candidate
  torch::Tensor valid = torch::ones({N}, torch::kBool);
  torch::Tensor logprobs, other;
  {
    // The teacher's buckets are the student's own (float64, plain formulas): log q_k and log(1 - sum q_k).
    torch::NoGradGuard ng;
    torch::Tensor q = z.to(torch::kDouble).softmax(-1);
    torch::Tensor safe = ids.clamp_min(0);
    torch::Tensor qk = q.gather(1, safe) * (ids >= 0).to(torch::kDouble);
    logprobs = torch::where(ids >= 0, qk.log(), torch::full({}, -1e4, torch::kDouble)).to(torch::kFloat);
    other = (1.0 - qk.sum(1)).log().to(torch::kFloat);
  }
  for (double T : {2.0, 4.0}) {
    SCOPED_TRACE(T);
    if (z.grad().defined()) z.grad().zero_();
    torch::Tensor loss = kd_loss(z, ids, logprobs, other, valid, T);
    loss.backward();
    // Bound: the loss is summed in float32 from K+1 terms p(log p - log q) of size <= 1/e each, so
    // cancellation leaves about (K+1) * 6e-8 * 0.4 * T^2 <= 2.5e-6 at T = 4 (the float64->float32
    // rounding of the teacher's buckets enters the KL only squared, ~1e-12). The gradient is
    // T * (p_T - q_T) per bucket, each side rounded to ~1e-7 relative: far under 1e-4.
    EXPECT_LT(std::fabs(loss.item<double>()), 1e-5);
    EXPECT_LT(z.grad().abs().max().item<double>(), 1e-4);
  }
  // A student that differs is penalized at every T.
  torch::NoGradGuard ng;
  torch::Tensor shifted = z.detach().clone();
  shifted.select(1, 0) += 1.0;
  EXPECT_GT(kd_loss(shifted, ids, logprobs, other, valid, 2.0).item<double>(), 1e-3);
}

TEST(TorchLosses, KdLossBackwardMatchesFiniteDifferences) {
  torch::manual_seed(21);
  const int64_t N = 4, V = 12, K = 3;
  torch::Tensor z = (torch::randn({N, V}) * 2).requires_grad_(true);
  torch::Tensor ids = torch::randperm(V).narrow(0, 0, K).repeat({N, 1});
  ids[2][2] = -1;
  torch::Tensor lp = torch::log_softmax(torch::randn({N, K + 1}), -1);
  torch::Tensor logprobs = lp.narrow(1, 0, K).contiguous(), other = lp.select(1, K).contiguous();
  torch::Tensor valid = torch::ones({N}, torch::kBool);
  kd_loss(z, ids, logprobs, other, valid, 1.5).backward();
  torch::NoGradGuard ng;
  for (int64_t i = 0; i < N * V; ++i) {
    torch::Tensor e = torch::zeros({N * V});
    e[i] = 1e-2;
    e = e.view({N, V});
    const double up = kd_loss(z + e, ids, logprobs, other, valid, 1.5).item<double>();
    const double dn = kd_loss(z - e, ids, logprobs, other, valid, 1.5).item<double>();
    EXPECT_NEAR(z.grad().view({-1})[i].item<double>(), (up - dn) / 2e-2, 2e-4) << i;
  }
}

// A teacher that puts all its mass on the true next token turns KL into CE, if (and only if) the
// distribution stored for position p is compared with the logits at p-1.
TEST(TorchLosses, DeltaTeacherOnTrueNextTokenMakesKlEqualCe) {
  torch::manual_seed(22);
  const int64_t V = 30, T = 9;
  std::vector<std::vector<KdPosition>> seqs(2);
  for (auto& s : seqs)
    for (int64_t p = 0; p < (&s == &seqs[0] ? T + 1 : 6); ++p) {
      KdPosition r;
      r.token = int32_t(torch::randint(0, V, {1}).item<int64_t>());
      r.valid = p > 0;
      r.ids = {r.token, (r.token + 1) % int32_t(V)};
      r.logprobs = {0.0f, -1e30f};
      r.other = -1e30f;  // log 0
      s.push_back(r);
    }
  Batch b = make_kd_batch(seqs, T, 4);
  for (int step = 0; step < 3; ++step) {
    torch::Tensor logits = torch::randn({2, T, V}) * (1 + step);
    LossTerms t = compute_losses(logits, b, LossWeights{1, 0, 0, 1}, {});
    EXPECT_NEAR(t.kd.item<double>(), t.ce.item<double>(), 1e-4 * t.ce.item<double>());
    // Misaligned targets (row p against the logits at p) do not track CE.
    Batch shifted = b;
    shifted.kd.ids = torch::roll(b.kd.ids, 1, 1);
    shifted.kd.valid = b.kd.valid & torch::roll(b.kd.valid, 1, 1);
    LossTerms u = compute_losses(logits, shifted, LossWeights{1, 0, 0, 1}, {});
    EXPECT_GT(std::abs(u.kd.item<double>() - u.ce.item<double>()), 0.1);
  }
  // The first row has no teacher (position 0 has no logits to train); alignment puts row p at p-1.
  EXPECT_EQ(b.kd.ids[0][0][0].item<int64_t>(), seqs[0][1].token);
  EXPECT_EQ(b.targets[0][0].item<int64_t>(), seqs[0][1].token);
  EXPECT_FALSE(b.kd.valid[1][5].item<bool>());  // beyond the short sequence: padding
}

TEST(TorchLosses, InvalidPositionsAreMaskedAndSafe) {
  torch::manual_seed(23);
  const int64_t V = 20, T = 6;
  std::vector<KdPosition> rows(T + 1);
  for (int64_t p = 0; p <= T; ++p) {
    rows[p].token = int32_t(p);
    rows[p].valid = p % 2 == 1;
    rows[p].ids = {int32_t(p + 1), int32_t(p + 2)};
    rows[p].logprobs = {-0.5f, -1.5f};
    rows[p].other = std::log1p(-std::exp(-0.5f) - std::exp(-1.5f));
  }
  Batch b = make_kd_batch({rows}, T, 2);
  torch::Tensor logits = torch::randn({1, T, V}).requires_grad_(true);
  LossTerms t = compute_losses(logits, b, LossWeights{1, 0, 0, 2.0}, {});
  t.total.backward();
  ASSERT_TRUE(torch::isfinite(logits.grad()).all().item<bool>());
  for (int64_t i = 0; i < T; ++i) {
    const bool valid = (i + 1) % 2 == 1;
    EXPECT_EQ(b.kd.valid[0][i].item<bool>(), valid);
    EXPECT_EQ(logits.grad()[0][i].abs().sum().item<float>() > 0, valid) << i;
    if (!valid) EXPECT_EQ(b.kd.other[0][i].item<float>(), 0.0f);  // P(other) = 1
  }
  // Changing what an invalid row says changes nothing.
  Batch b2 = b;
  b2.kd.logprobs = b.kd.logprobs.clone();
  b2.kd.logprobs[0][1].fill_(-0.01f);
  EXPECT_EQ(compute_losses(logits, b2, LossWeights{1, 0, 0, 2.0}, {}).kd.item<double>(), t.kd.item<double>());
  // A row holding a mismatched ids/logprobs pair is an error that names the position.
  rows[3].logprobs.pop_back();
  try {
    make_kd_batch({rows}, T, 2);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("position 3"), std::string::npos) << e.what();
  }
}

TEST(TorchLosses, FormatLossCoversOnlyStructuralTargets) {
  torch::manual_seed(24);
  Batch b = make_lm_batch({{5, 1, 7, 1, 9, 2}}, 5);
  torch::Tensor logits = torch::randn({1, 5, 12});
  torch::Tensor structural = torch::tensor({1, 2}, torch::kLong);
  LossTerms t = compute_losses(logits, b, LossWeights{}, structural);
  // targets: 1 7 1 9 2 -> structural at 0, 2, 4
  torch::Tensor nll = -torch::log_softmax(logits[0], -1);
  const double want = (nll[0][1] + nll[2][1] + nll[4][2]).item<double>() / 3;
  EXPECT_NEAR(t.format.item<double>(), want, 1e-5);
  EXPECT_NEAR(t.total.item<double>(), t.ce.item<double>() + 0.1 * want, 1e-5);  // CE-only: CE weight 1
  EXPECT_FALSE(t.kd.defined());
  EXPECT_EQ(compute_losses(logits, b, LossWeights{}, {}).format.item<double>(), 0.0);
}

}  // namespace
}  // namespace bkd

namespace bkd {
namespace {

// The fused per-position NLL against nll_loss(log_softmax) for float32 and bf16 logits, every row
// kernel this CPU runs, vocabularies that do and do not fill whole vectors; gradients included (the
// reference's gradient cast to bf16 where the logits are bf16).
TEST(TokenNll, EveryKernelMatchesLogSoftmaxNllAndItsGradient) {
  torch::manual_seed(51);
  for (int64_t V : {1, 7, 64, 1001}) {
    for (const std::string& kernel : runnable_softmax_kernels()) {
      for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
        SCOPED_TRACE(kernel + " V=" + std::to_string(V) + (dtype == torch::kBFloat16 ? " bf16" : " f32"));
        torch::Tensor z = (torch::randn({2, 9, V}) * 5).to(dtype).requires_grad_(true);
        torch::Tensor z2 = z.detach().clone().requires_grad_(true);
        torch::Tensor t = torch::randint(0, V, {2, 9}, torch::kLong);
        torch::Tensor w = (torch::rand({18}) > 0.3).to(torch::kFloat) * torch::randn({18});  // zeros: masked rows
        torch::Tensor nll = token_nll(z, t, kernel.c_str()), ref = token_nll_reference(z2, t);
        ASSERT_EQ(nll.sizes(), ref.sizes());
        EXPECT_TRUE(torch::allclose(nll, ref, 1e-5, 1e-5)) << (nll - ref).abs().max();
        (nll * w).sum().backward();
        (ref * w).sum().backward();
        ASSERT_EQ(z.grad().scalar_type(), dtype);
        const double tol = dtype == torch::kFloat ? 1e-6 : 1e-2;
        EXPECT_TRUE(torch::allclose(z.grad().to(torch::kFloat), z2.grad().to(torch::kFloat), tol, tol))
            << (z.grad().to(torch::kFloat) - z2.grad().to(torch::kFloat)).abs().max();
      }
    }
  }
  EXPECT_THROW(token_nll(torch::zeros({2, 5}), torch::tensor({0, 5}, torch::kLong)), Error);
}

}  // namespace
}  // namespace bkd

namespace bkd {
namespace {

// The fused student buckets against their tensor-op form: float32 and bf16 logits, every row kernel,
// T = 1 and T = 2, duplicate candidates, a row without candidates, and peaked rows whose candidates
// hold nearly all the mass (Other summed entry by entry); gradients through a random upstream.
TEST(KdBuckets, EveryKernelMatchesTheReferenceAndItsGradient) {
  torch::manual_seed(52);
  const int64_t N = 12, K = 5;
  for (int64_t V : {9, 300}) {
    torch::Tensor ids = torch::randint(0, V, {N, K}, torch::kLong);
    ids[1][3] = ids[1][0];  // a duplicate
    torch::Tensor has_any = torch::ones({N}, torch::kBool);
    has_any[2] = false;
    for (const std::string& kernel : runnable_softmax_kernels()) {
      for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
        for (double temperature : {1.0, 2.0}) {
          SCOPED_TRACE(kernel + " V=" + std::to_string(V) + (dtype == torch::kBFloat16 ? " bf16" : " f32") +
                       " T=" + std::to_string(temperature));
          torch::Tensor base = torch::randn({N, V}) * 2;
          for (int64_t r : {4, 5})  // peaked on the candidates
            for (int64_t c = 0; c < K; ++c) base[r][ids[r][c].item<int64_t>()] = 30.0 + double(c);
          torch::Tensor z = base.to(dtype).requires_grad_(true);
          torch::Tensor z2 = z.detach().clone().requires_grad_(true);
          torch::Tensor q = student_log_buckets(z, ids, has_any, temperature, kernel.c_str());
          torch::Tensor q2 = student_log_buckets_reference(z2, ids, has_any, temperature);
          ASSERT_EQ(q.sizes(), q2.sizes());
          // Other relative to itself (it can be ~1e-13 on the peaked rows), the candidates absolutely.
          EXPECT_TRUE(torch::allclose(q.narrow(1, 0, K), q2.narrow(1, 0, K), 1e-5, 1e-5));
          EXPECT_TRUE(torch::allclose(q.select(1, K), q2.select(1, K), 1e-4, 1e-4))
              << q.select(1, K) << q2.select(1, K);
          torch::Tensor up = torch::randn({N, K + 1});
          up[7].zero_();  // a masked row
          (q * up).sum().backward();
          (q2 * up).sum().backward();
          ASSERT_EQ(z.grad().scalar_type(), dtype);
          const double tol = dtype == torch::kFloat ? 1e-5 : 2e-2;
          EXPECT_TRUE(torch::allclose(z.grad().to(torch::kFloat), z2.grad().to(torch::kFloat), tol, tol))
              << (z.grad().to(torch::kFloat) - z2.grad().to(torch::kFloat)).abs().max();
          EXPECT_EQ(z.grad()[7].abs().sum().item<double>(), 0.0);
        }
      }
    }
  }
  EXPECT_THROW(student_log_buckets(torch::zeros({2, 5}), torch::full({2, 1}, 5, torch::kLong), torch::ones({2}, torch::kBool), 1.0),
               Error);
}

}  // namespace
}  // namespace bkd

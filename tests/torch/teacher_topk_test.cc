// The LibTorch teacher's vectorized top-K scoring (score_top_k: softmax, top-K, Other, rank next to
// the forward pass) against the reference the local provider computes from the full logits in double
// precision (log_softmax, top_k_indices, log_other_exact): same candidates, same values.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "core/config/settings.h"
#include "core/teacher/local_model.h"
#include "core/teacher/local_provider.h"
#include "core/teacher/logprob_math.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "torch/model/checkpoint.h"
#include "torch/model/model_api.h"
#include "torch/kernels/topk_scoring.h"
#include "torch/model/vocab_map.h"

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
// With `kept` non-empty the head is trimmed: one class per kept id plus the rare class (VocabMap).
std::unique_ptr<LocalLanguageModel> random_teacher(const TeacherDir& d, const std::vector<int32_t>& kept = {}) {
  VocabMap map;
  if (!kept.empty()) map.full_size = 50257, map.kept = kept;
  ModelConfig c;
  c.vocab_size = map.enabled() ? map.model_vocab() : 50257;
  c.d_model = 32, c.n_layers = 1, c.n_heads = 4, c.n_kv_heads = 4, c.ffn_dim = 64;
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
  nlohmann::json state = {{"model_config", c}, {"quant_mode", to_string(QuantMode::FullPrecision)}};
  if (map.enabled()) state["vocab_map"] = map.to_json();
  save_checkpoint(join_path(d.root, "teacher"), 0, model, opt, state, 1);
  write_file_atomic(join_path(d.root, ".env"), "");
  LoadOptions o;
  o.env_file = join_path(d.root, ".env");
  o.presets_dir = std::string(BKD_SOURCE_DIR) + "/configs";
  o.use_process_env = false;
  o.env = {{"DRIVE_ROOT", d.root}, {"CKPT_DIR", d.root}, {"ASSETS_DIR", std::string(BKD_SOURCE_DIR) + "/.assets"}};
  return make_torch_teacher(Settings::load(o), "topk-test");
}

const char* kText = "Knowledge distillation trains a small student on a teacher's distribution, caf\xc3\xa9.";

// score_top_k against core's double-precision reference over the full (expanded) logits rows:
// same candidates in the same order, same values, Other relative to itself, same next-token rank.
// Returns the largest top-K mass seen.
double expect_scores_match_reference(LocalLanguageModel& teacher, const std::vector<int32_t>& ids) {
  const auto rows = teacher.sequence_logits(ids);
  double max_top_mass = 0;
  for (int k : {1, 5, 20}) {
    SCOPED_TRACE("k=" + std::to_string(k));
    TopKScores fast;
    EXPECT_TRUE(teacher.score_top_k(ids, k, fast));
    EXPECT_EQ(fast.k, k);
    if (fast.log_other.size() != ids.size() - 1) {
      ADD_FAILURE() << "rows: " << fast.log_other.size();
      return 0;
    }
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
      EXPECT_EQ(fast.next_rank[i], rank) << "row " << i;
    }
  }
  return max_top_mass;
}

}  // namespace

TEST(TeacherTopK, VectorizedScoringEqualsTheDoublePrecisionReference) {
  TeacherDir d;
  std::shared_ptr<LocalLanguageModel> teacher = random_teacher(d);
  ASSERT_TRUE(teacher);
  const std::string text = kText;
  const auto ids = teacher->tokenizer().encode_ids(text);
  ASSERT_GE(ids.size(), 10u);
  const auto rows = teacher->sequence_logits(ids);
  const double max_top_mass = expect_scores_match_reference(*teacher, ids);
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

// Greedy decoding through the key/value cache gives the logits a forward over the whole context
// gives: while the context grows, when it branches or repeats, and once the provider slides the
// window past max_seq_len (no shared prefix: a fresh forward).
TEST(TeacherDecode, CachedNextLogitsEqualTheFullForwardAsTheContextGrowsBranchesAndSlides) {
  for (bool trimmed : {false, true}) {
    SCOPED_TRACE(trimmed ? "trimmed head" : "full head");
    TeacherDir d;
    std::vector<int32_t> kept;
    for (int32_t id = 0; id < 50257; id += 97) kept.push_back(id);
    std::shared_ptr<LocalLanguageModel> teacher = random_teacher(d, trimmed ? kept : std::vector<int32_t>{});
    ASSERT_TRUE(teacher);
    const int32_t max_ctx = teacher->max_context();
    std::vector<int32_t> ctx = teacher->tokenizer().encode_ids(kText);
    auto expect_full_forward = [&](const std::vector<int32_t>& c, const char* what) {
      const std::vector<float> got = teacher->next_logits(c);
      const std::vector<float> want = teacher->sequence_logits(c).back();
      ASSERT_EQ(got.size(), want.size());
      double worst = 0;
      for (size_t j = 0; j < got.size(); ++j) worst = std::max(worst, double(std::fabs(got[j] - want[j])));
      EXPECT_LT(worst, 1e-3) << what << " at context length " << c.size();
      EXPECT_EQ(std::max_element(got.begin(), got.end()) - got.begin(),
                std::max_element(want.begin(), want.end()) - want.begin());
    };
    while (int32_t(ctx.size()) < max_ctx + 6) {  // the provider's window: the last max_ctx tokens
      std::vector<int32_t> window =
          int32_t(ctx.size()) > max_ctx ? std::vector<int32_t>(ctx.end() - max_ctx, ctx.end()) : ctx;
      expect_full_forward(window, "growing");
      const std::vector<float> l = teacher->next_logits(window);  // the same context again
      ctx.push_back(int32_t(std::max_element(l.begin(), l.end()) - l.begin()));
    }
    std::vector<int32_t> branch(ctx.begin(), ctx.begin() + 20);
    branch[12] = 11;
    expect_full_forward(branch, "branched");
    std::vector<int32_t> shorter(ctx.begin(), ctx.begin() + 5);
    expect_full_forward(shorter, "shorter");
    std::vector<int32_t> too_long(ctx.begin(), ctx.begin() + max_ctx + 1);
    EXPECT_THROW(teacher->next_logits(too_long), Error);
    expect_full_forward(shorter, "after an error");
  }
}

// The teacher's decode timing (eval's TPS_t) decodes greedily through the cache: the tokens are those
// of the full forward, one timed step per token, and the summary agrees with the steps.
TEST(TeacherDecode, TimedDecodeFollowsTheFullForwardGreedyPath) {
  TeacherDir d;
  ASSERT_TRUE(random_teacher(d));
  LoadedModel m = load_model(join_path(d.root, "teacher"));
  const std::vector<int32_t> prompt = {464, 2068, 7586, 21831, 11687, 625, 262};
  const DecodeTiming t = measure_torch_decode_tps(m, prompt, 12);
  ASSERT_EQ(t.step_s.size(), 12u);
  ASSERT_EQ(t.tokens.size(), 13u);
  std::vector<int32_t> ctx = prompt;
  for (int32_t tok : t.tokens) {
    torch::Tensor l = forward_logits(m, ctx);
    EXPECT_EQ(l[l.size(0) - 1].argmax().item<int64_t>(), tok) << "after " << ctx.size() << " tokens";
    ctx.push_back(tok);
  }
  double sum = 0;
  for (double s : t.step_s) sum += s;
  EXPECT_NEAR(t.decode_s, sum, 1e-12);
  EXPECT_NEAR(t.decode_tokens_per_s, 12 / sum, 1e-6 * (12 / sum));
  EXPECT_LE(t.ms_per_token_best, t.ms_per_token_median);
  EXPECT_EQ(t.prompt_tokens, 7);
  EXPECT_GT(t.prefill_tokens_per_s, 0);
  EXPECT_THROW(measure_torch_decode_tps(m, prompt, 64), Error);  // 7 + 64 > max_seq_len 64
  EXPECT_THROW(measure_torch_decode_tps(m, {}, 4), Error);
}

// A trimmed head is scored over its classes without expanding them. Few kept ids, so the rare class
// (about 50k external ids tied at one value) is often inside the top-K and often the next token.
TEST(TeacherTopK, TrimmedHeadScoresEqualTheExpandedReference) {
  TeacherDir d;
  std::vector<int32_t> kept;
  for (int32_t id = 7; id < 50257; id += 1361) kept.push_back(id);  // 37 ids, none of them the text's
  kept.push_back(50256);
  std::shared_ptr<LocalLanguageModel> teacher = random_teacher(d, kept);
  ASSERT_TRUE(teacher);
  EXPECT_EQ(teacher->vocab_size(), 50257);
  const auto ids = teacher->tokenizer().encode_ids(kText);
  expect_scores_match_reference(*teacher, ids);
  int rare_on_top = 0;
  for (const auto& row : teacher->sequence_logits(ids)) {
    const auto top = top_k_indices(log_softmax(row, 1.0), 1);
    rare_on_top += !std::binary_search(kept.begin(), kept.end(), top[0]);
  }
  EXPECT_GT(rare_on_top, 0) << "the rare class never led a row: the merge was not exercised";
}

// Hand-made row: a kept entry tied exactly with the rare ids' value, and another kept entry tied
// with the k-th value outside the top-K. Order and Other as the expanded row gives them.
TEST(TopKScoring, TiesBetweenKeptAndRareIdsFollowTheExpandedRow) {
  const std::vector<int32_t> kept = {2, 5, 7, 9};
  const std::vector<int32_t> rare = {0, 1, 3, 4, 6, 8};  // 10 external ids in all
  const float log_rc = float(std::log(6.0));
  std::vector<float> row = {0.5f, -1.0f, 0.5f, 0.0f, 2.0f};  // classes: ids 2, 5, 7, 9, rare
  const float vr = row[4] - log_rc;
  row[1] = vr;  // id 5 ties with every rare id
  RowClasses c;
  c.kept = 4, c.kept_ids = kept.data(), c.rare_count = 6, c.rare_ids = rare.data(), c.log_rare_count = log_rc;
  std::vector<float> expanded(10);
  for (size_t i = 0; i < kept.size(); ++i) expanded[size_t(kept[i])] = row[i];
  for (int32_t id : rare) expanded[size_t(id)] = vr;
  const auto lp = log_softmax(expanded, 1.0);
  for (const std::string& kernel : runnable_row_kernels())
  for (int k : {1, 2, 3, 4, 6, 7, 8, 10}) {
    for (int32_t target : {0, 5, 7, 9}) {
      SCOPED_TRACE(kernel + " k=" + std::to_string(k) + " target " + std::to_string(target));
      TopKScores out;
      out.k = k, out.ids.assign(size_t(k), -1), out.logprobs.assign(size_t(k), 0);
      out.log_other.assign(1, 0), out.next_logprob.assign(1, 0), out.next_rank.assign(1, 0);
      const auto cls_it = std::lower_bound(kept.begin(), kept.end(), target);
      const int32_t cls = cls_it != kept.end() && *cls_it == target ? int32_t(cls_it - kept.begin()) : 4;
      score_row(row.data(), c, k, cls, 0, out, kernel.c_str());
      const auto idx = top_k_indices(lp, k);
      for (int j = 0; j < k; ++j) {
        EXPECT_EQ(out.ids[size_t(j)], idx[size_t(j)]) << "rank " << j;
        EXPECT_NEAR(out.logprobs[size_t(j)], lp[size_t(idx[size_t(j)])], 1e-6);
      }
      if (k < 10) EXPECT_NEAR(out.log_other[0], log_other_exact(lp, idx), 1e-6);
      else EXPECT_EQ(out.log_other[0], -INFINITY);
      EXPECT_NEAR(out.next_logprob[0], lp[size_t(target)], 1e-6);
      int rank = 1;
      for (double v : lp) rank += v > lp[size_t(target)];
      EXPECT_EQ(out.next_rank[0], rank);
    }
  }
}

// Every instruction set's row passes on rows long enough for the block loop and its padded tail,
// from flat (Other by subtraction) to peaked (Other summed in the second pass), with and without a
// rare class, against the expanded row in double.
TEST(TopKScoring, EveryKernelMatchesTheExpandedReferenceFromFlatToPeakedRows) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t vocab = 1000;
  std::vector<int32_t> kept, rare;
  for (int32_t id = 0; id < vocab; ++id) (id % 7 == 3 ? rare : kept).push_back(id);
  const float log_rc = float(std::log(double(rare.size())));
  std::vector<int32_t> class_of(static_cast<size_t>(vocab));
  for (size_t i = 0; i < kept.size(); ++i) class_of[size_t(kept[i])] = int32_t(i);
  for (int32_t id : rare) class_of[size_t(id)] = int32_t(kept.size());
  for (bool trimmed : {false, true}) {
    for (float spread : {0.5f, 3.0f, 12.0f, 40.0f}) {
      const int64_t classes = trimmed ? int64_t(kept.size()) + 1 : vocab;
      std::vector<float> row(static_cast<size_t>(classes));
      for (auto& x : row) x = spread * normal(rng);
      RowClasses c;
      if (trimmed) {
        c.kept = int64_t(kept.size()), c.kept_ids = kept.data(), c.rare_count = int64_t(rare.size());
        c.rare_ids = rare.data(), c.log_rare_count = log_rc;
      } else {
        c.kept = vocab;
      }
      std::vector<float> expanded(static_cast<size_t>(vocab));
      for (int32_t id = 0; id < vocab; ++id)
        expanded[size_t(id)] = trimmed ? (class_of[size_t(id)] < c.kept ? row[size_t(class_of[size_t(id)])]
                                                                        : row[size_t(c.kept)] - log_rc)
                                       : row[size_t(id)];
      const auto lp = log_softmax(expanded, 1.0);
      for (const std::string& kernel : runnable_row_kernels()) {
        for (int k : {1, 20, 64}) {
          SCOPED_TRACE(kernel + (trimmed ? " trimmed" : " full") + " spread " + std::to_string(spread) + " k=" +
                       std::to_string(k));
          const int32_t target = int32_t(rng() % uint32_t(vocab));
          TopKScores out;
          out.k = k, out.ids.assign(size_t(k), -1), out.logprobs.assign(size_t(k), 0);
          out.log_other.assign(1, 0), out.next_logprob.assign(1, 0), out.next_rank.assign(1, 0);
          score_row(row.data(), c, k, trimmed ? class_of[size_t(target)] : target, 0, out, kernel.c_str());
          const auto idx = top_k_indices(lp, k);
          for (int j = 0; j < k; ++j) {
            ASSERT_EQ(out.ids[size_t(j)], idx[size_t(j)]) << "rank " << j;
            EXPECT_NEAR(out.logprobs[size_t(j)], lp[size_t(idx[size_t(j)])], 2e-5);
          }
          EXPECT_NEAR(std::exp(out.log_other[0] - log_other_exact(lp, idx)), 1.0, 1e-4);
          EXPECT_NEAR(out.next_logprob[0], lp[size_t(target)], 2e-5);
          int rank = 1;
          for (double v : lp) rank += v > lp[size_t(target)];
          EXPECT_EQ(out.next_rank[0], rank);
        }
      }
    }
  }
}

namespace {
// The teacher seen without its fast paths: the local provider then draws from sequence_logits in
// double precision (draws.h's reference).
class WithoutFastPaths : public LocalLanguageModel {
 public:
  explicit WithoutFastPaths(std::shared_ptr<LocalLanguageModel> m) : m_(std::move(m)) {}
  std::string name() const override { return m_->name(); }
  const Tokenizer& tokenizer() const override { return m_->tokenizer(); }
  int32_t vocab_size() const override { return m_->vocab_size(); }
  int32_t eos_id() const override { return m_->eos_id(); }
  int32_t max_context() const override { return m_->max_context(); }
  std::vector<float> next_logits(const std::vector<int32_t>& c) override { return m_->next_logits(c); }
  std::vector<std::vector<float>> sequence_logits(const std::vector<int32_t>& t) override { return m_->sequence_logits(t); }

 private:
  std::shared_ptr<LocalLanguageModel> m_;
};
}  // namespace

// Full head: the LibTorch teacher's draws are the reference's, count for count (both invert the same
// cumulative distribution in id order with the same uniforms; their probabilities differ by double
// rounding, ~1e-16, so a uniform would have to fall that close to a class boundary to differ: about
// 1e-12 for the ~2,000 draws here). The scored token's log-prob and rank are top-K scoring's.
TEST(TeacherSampled, FullHeadDrawsEqualTheDoublePrecisionReference) {
  TeacherDir d;
  std::shared_ptr<LocalLanguageModel> teacher = random_teacher(d);
  ASSERT_TRUE(teacher);
  LocalProvider fast(teacher), reference(std::make_shared<WithoutFastPaths>(teacher));
  const Scoring a = fast.score_sampled(kText, 32, 5), b = reference.score_sampled(kText, 32, 5);
  ASSERT_EQ(a.tokens.size(), b.tokens.size());
  for (size_t i = 1; i < a.tokens.size(); ++i) {
    ASSERT_EQ(a.tokens[i].top.size(), b.tokens[i].top.size()) << "row " << i;
    for (size_t j = 0; j < a.tokens[i].top.size(); ++j) {
      EXPECT_EQ(a.tokens[i].top[j].id, b.tokens[i].top[j].id) << "row " << i;
      EXPECT_EQ(a.tokens[i].top[j].logprob, b.tokens[i].top[j].logprob) << "row " << i;
    }
    EXPECT_NEAR(a.tokens[i].logprob, b.tokens[i].logprob, 2e-5);
    EXPECT_EQ(a.tokens[i].rank, b.tokens[i].rank);
  }
}

// Trimmed head: a draw of the rare class becomes one of its ids, uniformly, so the expected count of
// every id is the expanded row's probability times the draws. Pooled over many rows, each kept id's
// count and the rare ids' total are within 5 sd of that (sd from the multinomial variance, summed over
// rows), and the rare draws spread over many ids.
TEST(TeacherSampled, TrimmedHeadDrawsFollowTheExpandedDistribution) {
  TeacherDir d;
  std::vector<int32_t> kept;
  for (int32_t id = 7; id < 50257; id += 1361) kept.push_back(id);
  kept.push_back(50256);
  std::shared_ptr<LocalLanguageModel> teacher = random_teacher(d, kept);
  ASSERT_TRUE(teacher);
  const auto ids = teacher->tokenizer().encode_ids(kText);
  const int draws = 256;
  SampledScores s;
  ASSERT_TRUE(teacher->score_samples(ids, draws, 11, s));
  ASSERT_EQ(s.rows.size(), ids.size() - 1);
  const auto rows = teacher->sequence_logits(ids);
  std::map<int32_t, double> mean, var, got;  // kept ids; key -1: all rare ids together
  std::set<int32_t> rare_seen;
  for (size_t i = 0; i < s.rows.size(); ++i) {
    const auto lp = log_softmax(rows[i], 1.0);
    double rare = 0;
    for (int32_t id = 0; id < 50257; ++id) {
      const double p = std::exp(lp[size_t(id)]);
      if (std::binary_search(kept.begin(), kept.end(), id)) mean[id] += draws * p, var[id] += draws * p * (1 - p);
      else rare += p;
    }
    mean[-1] += draws * rare, var[-1] += draws * rare * (1 - rare);
    int total = 0;
    for (const auto& [id, c] : s.rows[i]) {
      const bool is_kept = std::binary_search(kept.begin(), kept.end(), id);
      got[is_kept ? id : -1] += c;
      if (!is_kept) rare_seen.insert(id);
      total += c;
    }
    EXPECT_EQ(total, draws);
    EXPECT_NEAR(s.next_logprob[i], lp[size_t(ids[i + 1])], 2e-5);
  }
  for (const auto& [id, m] : mean) EXPECT_NEAR(got[id], m, 5 * std::sqrt(var[id]) + 1e-9) << "id " << id;
  EXPECT_GT(got[-1], 50) << "the rare class was hardly drawn: the case is not exercised";
  EXPECT_GT(rare_seen.size(), size_t(got[-1] * 0.9)) << "rare draws should spread over ~50k ids";
}

#include "torch/model/model_api.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "core/config/run_layout.h"
#include "core/config/settings.h"
#include "core/teacher/draws.h"
#include "core/teacher/local_model.h"
#include "core/tokenizer/gpt2_bpe.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/sysinfo.h"
#include "torch/model/autocast_compat.h"
#include "torch/model/checkpoint.h"
#include "torch/model/device.h"
#include "torch/model/hf_model.h"
#include "core/model/hf_config.h"
#include "core/tokenizer/hf_folder_tokenizer.h"
#include "torch/kernels/topk_scoring.h"
#include "torch/train/trainer.h"  // keep_freed_memory

namespace bkd {

LoadedModel load_model(const std::string& checkpoint_dir) {
  keep_freed_memory();  // every forward allocates [T, vocab] logits: reuse the pages, no per-call page faults
  std::string ck = checkpoint_dir;
  if (!file_exists(RunLayout::checkpoint_state(ck))) {
    auto latest = latest_checkpoint(checkpoint_dir);
    if (!latest)
      throw Error("no checkpoint in " + checkpoint_dir,
                  "train one first (`bitnet-kde train --role student` or `--role teacher`)");
    ck = *latest;
  }
  LoadedModel m;
  m.checkpoint = ck;
  m.state = load_checkpoint_state(ck);
  m.config = m.state.at("model_config").get<ModelConfig>();
  m.mode = quant_mode_from_string(m.state.at("quant_mode").get<std::string>());
  if (m.state.contains("vocab_map")) m.vocab_map = VocabMap::from_json(m.state.at("vocab_map"));
  if (m.vocab_map.enabled() && m.vocab_map.model_vocab() != m.config.vocab_size)
    throw Error("checkpoint " + ck + ": the vocabulary map has " + std::to_string(m.vocab_map.model_vocab()) +
                    " classes but the model " + std::to_string(m.config.vocab_size),
                "the checkpoint is damaged; retrain it");
  m.model = Transformer(m.config, m.mode);
  load_model_weights(ck, m.model, false);
  m.model->eval();
  return m;
}

namespace {
// The model's ids [1, n] for ids[from..] (external token ids), after checking them (the ones before
// `from` were checked when they were first seen).
torch::Tensor model_ids(const LoadedModel& m, const std::vector<int32_t>& ids, size_t from = 0) {
  if (ids.empty()) throw Error("forward_logits: empty token sequence");
  if (int64_t(ids.size()) > m.config.max_seq_len)
    throw Error("forward_logits: " + std::to_string(ids.size()) + " tokens exceed the model's max_seq_len " +
                    std::to_string(m.config.max_seq_len),
                "score the text in windows");
  for (size_t i = from; i < ids.size(); ++i)
    if (const int32_t id = ids[i]; id < 0 || id >= m.vocab_size())
      throw Error("forward_logits: token id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(m.vocab_size()));
  torch::Tensor t = torch::tensor(std::vector<int64_t>(ids.begin() + int64_t(from), ids.end()), torch::kLong);
  return m.vocab_map.to_model(t.view({1, -1})).to(m.device);
}
}  // namespace

torch::Tensor forward_model_logits(LoadedModel& m, const std::vector<int32_t>& ids) {
  torch::Tensor t = model_ids(m, ids);
  torch::NoGradGuard ng;
  AutocastGuard ac(m.device, m.weight_dtype);
  return m.model->forward(t).select(0, 0).to(torch::kCPU, torch::kFloat).contiguous();
}

torch::Tensor IncrementalDecoder::next_logits(const std::vector<int32_t>& context) {
  // Reuse the cached keys/values of the longest common prefix; at least the last token runs again
  // (its logits are not kept). A sliding window shares no prefix and recomputes from scratch.
  size_t p = 0;
  while (p < tokens_.size() && p < context.size() && tokens_[p] == context[p]) ++p;
  if (p == context.size() && p > 0) --p;
  torch::Tensor fresh = model_ids(m_, context, p);
  torch::NoGradGuard ng;
  cache_.truncate(int64_t(p));
  torch::Tensor logits;
  try {
    AutocastGuard ac(m_.device, m_.weight_dtype);
    logits = m_.model->forward_cached(fresh, cache_);
  } catch (...) {
    reset();
    throw;
  }
  tokens_ = context;
  torch::Tensor last = logits.select(0, 0).narrow(0, logits.size(1) - 1, 1).to(torch::kCPU, torch::kFloat);
  return m_.vocab_map.expand_logits(last).select(0, 0).contiguous();
}

torch::Tensor forward_logits(LoadedModel& m, const std::vector<int32_t>& ids) {
  return m.vocab_map.expand_logits(forward_model_logits(m, ids)).contiguous();
}

DecodeTiming measure_torch_decode_tps(LoadedModel& m, const std::vector<int32_t>& prompt, int64_t n_tokens) {
  if (prompt.empty()) throw Error("measure_torch_decode_tps needs a non-empty prompt");
  if (n_tokens < 1) throw Error("measure_torch_decode_tps needs at least one decode step");
  if (int64_t(prompt.size()) + n_tokens > m.config.max_seq_len)
    throw Error("prompt (" + std::to_string(prompt.size()) + " tokens) plus " + std::to_string(n_tokens) +
                    " decode steps exceed the model's context of " + std::to_string(m.config.max_seq_len),
                "use a shorter prompt or fewer decode steps");
  DecodeTiming r;
  r.kernels = "libtorch";
  r.mode = m.mode;
  r.threads = at::get_num_threads();
  r.prompt_tokens = int64_t(prompt.size());
  r.decode_tokens = n_tokens;
  IncrementalDecoder dec(m);
  std::vector<int32_t> ctx = prompt;
  torch::Tensor logits;
  time_greedy_decode(
      r, n_tokens, [&] { logits = dec.next_logits(ctx); },
      [&] { return int32_t(logits.argmax().item<int64_t>()); },
      [&](int32_t next) {
        ctx.push_back(next);
        logits = dec.next_logits(ctx);
      });
  return r;
}

namespace {

class TorchTeacher : public LocalLanguageModel {
 public:
  // The logits callers see cover the tokenizer's ids: a Hugging Face model's embedding is often padded
  // past its vocabulary (Qwen3: 151936 rows, 151669 tokens), and ids without a token are neither
  // candidates nor part of the normalizer.
  TorchTeacher(LoadedModel m, std::unique_ptr<Tokenizer> tok, std::string name)
      : m_(std::move(m)), tok_(std::move(tok)), name_(std::move(name)), vocab_(tok_->vocab_size()) {
    if (tok_->vocab_size() > m_.vocab_size())
      throw Error("teacher " + m_.checkpoint + " has vocabulary " + std::to_string(m_.vocab_size()) + " but its " +
                  tok_->kind() + " tokenizer has " + std::to_string(tok_->vocab_size()),
                  "the tokenizer does not belong to the model");
    const VocabMap& map = m_.vocab_map;
    if (map.enabled()) {
      classes_.kept = int64_t(map.kept.size());
      classes_.kept_ids = map.kept.data();
      torch::Tensor lut = map.to_model_lut();
      class_of_.assign(lut.data_ptr<int64_t>(), lut.data_ptr<int64_t>() + lut.numel());
      for (int64_t id = 0; id < map.full_size; ++id)
        if (class_of_[size_t(id)] == classes_.kept) rare_ids_.push_back(int32_t(id));
      classes_.rare_count = map.rare_count();
      classes_.rare_ids = rare_ids_.data();
      classes_.log_rare_count = float(std::log(double(std::max<int64_t>(1, map.rare_count()))));
    } else {
      classes_.kept = vocab_;
    }
  }
  std::string name() const override { return name_; }
  const Tokenizer& tokenizer() const override { return *tok_; }
  int32_t vocab_size() const override { return int32_t(vocab_); }
  int32_t eos_id() const override { return tok_->eos_id(); }
  int32_t max_context() const override { return int32_t(m_.config.max_seq_len); }
  std::vector<float> next_logits(const std::vector<int32_t>& context) override {
    check_ids(context);
    std::lock_guard<std::mutex> lock(decode_mu_);
    torch::Tensor last = decoder_.next_logits(context);  // greedy decoding extends the context: one token a call
    return std::vector<float>(last.data_ptr<float>(), last.data_ptr<float>() + vocab_);
  }
  std::vector<std::vector<float>> sequence_logits(const std::vector<int32_t>& tokens) override {
    if (int64_t(tokens.size()) > m_.config.max_seq_len) return LocalLanguageModel::sequence_logits(tokens);
    check_ids(tokens);
    torch::Tensor l = forward_logits(m_, tokens);
    std::vector<std::vector<float>> rows(size_t(l.size(0)));
    for (int64_t i = 0; i < l.size(0); ++i) {
      const float* p = l[i].data_ptr<float>();
      rows[size_t(i)].assign(p, p + vocab_);
    }
    return rows;
  }
  // Softmax statistics, top-K, exact Other and the next token's rank straight from the model's
  // [T, classes] logits (a trimmed head is scored without expanding it; topk_scoring.h), rows in
  // parallel on LibTorch's intra-op pool, no [T, V] temporaries.
  bool score_top_k(const std::vector<int32_t>& tokens, int k, TopKScores& out) override {
    if (tokens.size() < 2 || int64_t(tokens.size()) > m_.config.max_seq_len || k <= 0) return false;
    check_ids(tokens);
    torch::NoGradGuard ng;
    torch::Tensor l = forward_model_logits(m_, tokens);  // row i predicts tokens[i + 1]
    const int64_t rows = l.size(0) - 1, classes = l.size(1);
    const int64_t kk = std::min<int64_t>(k, vocab_);
    out.k = int(kk);
    out.ids.assign(size_t(rows * kk), 0);
    out.logprobs.assign(size_t(rows * kk), 0.0);
    out.log_other.assign(size_t(rows), 0.0);
    out.next_logprob.assign(size_t(rows), 0.0);
    out.next_rank.assign(size_t(rows), 0);
    const float* base = l.data_ptr<float>();
    at::parallel_for(0, rows, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const int32_t next = tokens[size_t(i + 1)];
        const int32_t cls = class_of_.empty() ? next : int32_t(class_of_[size_t(next)]);
        score_row(base + i * classes, classes_, kk, cls, size_t(i), out);
      }
    });
    return true;
  }
  // Draws over the model's classes (draws.h); a draw of the trimmed head's rare class picks one of its
  // ids uniformly with the row's next uniform, as the expansion spreads that class's mass evenly.
  bool score_samples(const std::vector<int32_t>& tokens, int draws, uint64_t seed, SampledScores& out) override {
    if (tokens.size() < 2 || int64_t(tokens.size()) > m_.config.max_seq_len || draws < 1) return false;
    check_ids(tokens);
    torch::NoGradGuard ng;
    torch::Tensor l = forward_model_logits(m_, tokens).contiguous();  // row i predicts tokens[i + 1]
    const int64_t rows = l.size(0) - 1, classes = l.size(1);
    torch::Tensor p = torch::softmax(l.narrow(0, 0, rows).to(torch::kDouble), -1).contiguous();
    TopKScores next;  // the next token's log-prob and rank, as top-K scoring reports them
    next.k = 1;
    next.ids.assign(size_t(rows), 0);
    next.logprobs.assign(size_t(rows), 0.0);
    next.log_other.assign(size_t(rows), 0.0);
    next.next_logprob.assign(size_t(rows), 0.0);
    next.next_rank.assign(size_t(rows), 0);
    out.rows.assign(size_t(rows), {});
    const float* base = l.data_ptr<float>();
    const double* pb = p.data_ptr<double>();
    at::parallel_for(0, rows, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const int32_t target = tokens[size_t(i + 1)];
        score_row(base + i * classes, classes_, 1, class_of_.empty() ? target : int32_t(class_of_[size_t(target)]),
                  size_t(i), next);
        SeededUniform rng(row_seed(seed, uint64_t(i)));
        out.rows[size_t(i)] = ids_of_draws(draw_counts(pb + i * classes, classes, draws, rng), rng);
      }
    });
    out.next_logprob = std::move(next.next_logprob);
    out.next_rank = std::move(next.next_rank);
    return true;
  }

 private:
  // Ids the model has rows for but the tokenizer no token: an error, not a silent score.
  void check_ids(const std::vector<int32_t>& ids) const {
    for (int32_t id : ids)
      if (id < 0 || id >= vocab_)
        throw Error("teacher " + name_ + ": token id " + std::to_string(id) + " is outside its tokenizer's " +
                    std::to_string(vocab_) + " ids");
  }
  // Class counts to token-id counts, most frequent first (lower id first on ties).
  std::vector<std::pair<int32_t, int32_t>> ids_of_draws(const std::vector<std::pair<int32_t, int32_t>>& by_class,
                                                        SeededUniform& rng) const {
    std::vector<std::pair<int32_t, int32_t>> out;
    std::vector<int32_t> rare;
    for (const auto& [cls, count] : by_class) {
      if (classes_.rare_count > 0 && cls == classes_.kept) {
        for (int32_t k = 0; k < count; ++k)
          rare.push_back(classes_.rare_ids[std::min<int64_t>(classes_.rare_count - 1, int64_t(rng.next() * double(classes_.rare_count)))]);
      } else {
        out.emplace_back(classes_.kept_ids ? classes_.kept_ids[cls] : cls, count);
      }
    }
    std::sort(rare.begin(), rare.end());
    for (size_t a = 0; a < rare.size();) {
      size_t b = a;
      while (b < rare.size() && rare[b] == rare[a]) ++b;
      out.emplace_back(rare[a], int32_t(b - a));
      a = b;
    }
    std::sort(out.begin(), out.end(), [](const auto& x, const auto& y) { return x.second != y.second ? x.second > y.second : x.first < y.first; });
    return out;
  }
  LoadedModel m_;
  IncrementalDecoder decoder_{m_};
  std::mutex decode_mu_;
  std::unique_ptr<Tokenizer> tok_;
  std::string name_;
  int64_t vocab_;                  // the tokenizer's ids: the columns callers see
  RowClasses classes_;             // points into m_.vocab_map.kept and rare_ids_
  std::vector<int64_t> class_of_;  // external id -> model class (empty: identity)
  std::vector<int32_t> rare_ids_;  // external ids of the rare class, ascending
};

}  // namespace

LocalTeacherModel load_local_teacher(const Settings& s) {
  LocalTeacherModel t;
  if (const std::string dir = s.str("TEACHER_MODEL_DIR"); !dir.empty()) {
    HfLoadOptions o;
    o.device = resolve_device(s.str("DEVICE"));
    const HfModelInfo info = read_hf_config(dir);
    o.weight_dtype = hf_weight_dtype(s.str("TEACHER_DTYPE"), o.device, info.config.parameter_count());
    t.tokenizer = load_hf_folder_tokenizer(dir);  // first: it fails faster than the weights load
    t.model = load_hf_model(dir, o);
    const int64_t bos = info.bos_id;
    t.bos = bos >= 0 && bos < t.tokenizer->vocab_size() ? int32_t(bos) : t.tokenizer->eos_id();
    return t;
  }
  const RunLayout layout(s);
  t.model = load_model(layout.role_checkpoints("teacher"));
  t.tokenizer = Gpt2Bpe::load(layout.gpt2_encoder_json(), layout.gpt2_vocab_bpe());
  t.bos = t.tokenizer->eos_id();
  return t;
}


std::unique_ptr<LocalLanguageModel> make_torch_teacher(const Settings& s, const std::string& model_name) {
  if (s.str("TEACHER_MODEL_DIR").empty() && !latest_checkpoint(RunLayout(s).role_checkpoints("teacher"))) return nullptr;
  LocalTeacherModel t = load_local_teacher(s);
  return std::make_unique<TorchTeacher>(std::move(t.model), std::move(t.tokenizer), model_name);
}

}  // namespace bkd

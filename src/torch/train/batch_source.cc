#include "torch/train/batch_source.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "core/data/token_file.h"
#include "core/util/error.h"

namespace bkd {
namespace {
std::vector<int64_t> permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + uint64_t(epoch) + 1);
  // Fisher-Yates with our own index draw: std::shuffle's sequence differs between standard libraries.
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[rng() % uint64_t(i + 1)]);
  return order;
}
}  // namespace

TokenWindowSource::TokenWindowSource(const std::vector<std::vector<int32_t>>& docs, int64_t seq_len,
                                     int64_t batch_size, int32_t eos_id, uint64_t seed, std::string name)
    : T_(seq_len), B_(batch_size), seed_(seed), name_(std::move(name)) {
  for (const auto& d : docs) {
    stream_.insert(stream_.end(), d.begin(), d.end());
    if (eos_id >= 0 && !d.empty() && d.back() != eos_id) stream_.push_back(eos_id);
  }
  n_windows_ = stream_.empty() ? 0 : (int64_t(stream_.size()) - 1) / T_;
  if (n_windows_ < 1)
    throw Error(name_ + " holds " + std::to_string(stream_.size()) + " tokens: not enough for one sequence of " +
                    std::to_string(T_) + " (+1) tokens",
                "use more text or a smaller SEQ_LEN");
  shuffle_epoch();
}

std::unique_ptr<TokenWindowSource> TokenWindowSource::from_token_file(const std::string& path, int64_t seq_len,
                                                                      int64_t batch_size, int32_t eos_id,
                                                                      uint64_t seed) {
  TokenFile f(path);
  std::vector<std::vector<int32_t>> docs(f.num_docs());
  for (uint64_t d = 0; d < f.num_docs(); ++d) docs[d] = f.doc(d);
  return std::make_unique<TokenWindowSource>(docs, seq_len, batch_size, eos_id, seed, path);
}

void TokenWindowSource::shuffle_epoch() { order_ = permutation(n_windows_, seed_, epoch_); }

Batch TokenWindowSource::next() {
  std::vector<std::vector<int32_t>> seqs;
  for (int64_t b = 0; b < B_; ++b) {
    if (cursor_ >= n_windows_) ++epoch_, cursor_ = 0, shuffle_epoch();
    const int64_t w = order_[cursor_++];
    seqs.emplace_back(stream_.begin() + w * T_, stream_.begin() + w * T_ + T_ + 1);
  }
  return make_lm_batch(seqs, T_);
}

nlohmann::json TokenWindowSource::state() const {
  return {{"kind", "token-windows"}, {"epoch", epoch_}, {"cursor", cursor_}, {"windows", n_windows_}};
}

void TokenWindowSource::restore(const nlohmann::json& j) {
  if (j.at("windows").get<int64_t>() != n_windows_)
    throw Error("checkpoint data position is for " + std::to_string(j.at("windows").get<int64_t>()) +
                    " windows but " + name_ + " now has " + std::to_string(n_windows_),
                "the tokenized data or SEQ_LEN changed since the checkpoint; start a fresh run");
  epoch_ = j.at("epoch").get<int64_t>();
  cursor_ = j.at("cursor").get<int64_t>();
  shuffle_epoch();
}

std::string TokenWindowSource::describe() const {
  return name_ + ": " + std::to_string(stream_.size()) + " tokens, " + std::to_string(n_windows_) + " windows of " +
         std::to_string(T_) + " (CE only)";
}

KdMemorySource::KdMemorySource(std::vector<std::vector<KdPosition>> seqs, int64_t seq_len, int64_t batch_size,
                               int64_t top_k, uint64_t seed)
    : seqs_(std::move(seqs)), T_(seq_len), B_(batch_size), K_(top_k), seed_(seed) {
  if (seqs_.empty()) throw Error("no KD sequences to train on");
  for (auto& s : seqs_)
    if (int64_t(s.size()) > T_ + 1) s.resize(T_ + 1);
  shuffle_epoch();
}

void KdMemorySource::shuffle_epoch() { order_ = permutation(int64_t(seqs_.size()), seed_, epoch_); }

Batch KdMemorySource::next() {
  std::vector<std::vector<KdPosition>> batch;
  for (int64_t b = 0; b < B_; ++b) {
    if (cursor_ >= int64_t(seqs_.size())) ++epoch_, cursor_ = 0, shuffle_epoch();
    batch.push_back(seqs_[order_[cursor_++]]);
  }
  return make_kd_batch(batch, T_, K_);
}

nlohmann::json KdMemorySource::state() const {
  return {{"kind", "kd-memory"}, {"epoch", epoch_}, {"cursor", cursor_}, {"sequences", seqs_.size()}};
}

void KdMemorySource::restore(const nlohmann::json& j) {
  epoch_ = j.at("epoch").get<int64_t>();
  cursor_ = j.at("cursor").get<int64_t>();
  shuffle_epoch();
}

std::string KdMemorySource::describe() const {
  return "in-memory KD: " + std::to_string(seqs_.size()) + " sequences, top-" + std::to_string(K_);
}

}  // namespace bkd

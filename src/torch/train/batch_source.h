#pragma once
// Where training batches come from. Each source is deterministic given its seed and can save and
// restore its position, so a resumed run sees exactly the batches the uninterrupted run would have.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "torch/train/batch.h"

namespace bkd {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual Batch next() = 0;
  virtual nlohmann::json state() const = 0;
  virtual void restore(const nlohmann::json& j) = 0;
  virtual std::string describe() const = 0;
  virtual bool has_kd() const = 0;
};

// Shuffled windows over a token stream (documents joined with an end-of-text token when eos_id >= 0).
// Window w covers tokens [w*T, w*T + T] (T+1 tokens: inputs and the shifted targets). Each epoch visits
// every window once in an order drawn from (seed, epoch).
class TokenWindowSource : public BatchSource {
 public:
  TokenWindowSource(const std::vector<std::vector<int32_t>>& docs, int64_t seq_len, int64_t batch_size, int32_t eos_id,
                    uint64_t seed, std::string name = "memory");
  static std::unique_ptr<TokenWindowSource> from_token_file(const std::string& path, int64_t seq_len,
                                                            int64_t batch_size, int32_t eos_id, uint64_t seed);
  Batch next() override;
  nlohmann::json state() const override;
  void restore(const nlohmann::json& j) override;
  std::string describe() const override;
  bool has_kd() const override { return false; }
  int64_t num_windows() const { return n_windows_; }
  int64_t num_tokens() const { return int64_t(stream_.size()); }

 private:
  void shuffle_epoch();
  std::vector<int32_t> stream_;
  int64_t T_, B_, n_windows_;
  uint64_t seed_;
  std::string name_;
  int64_t epoch_ = 0, cursor_ = 0;
  std::vector<int64_t> order_;
};

// KD sequences held in memory (tests; a shard reader produces the same rows). Sequences are visited in
// a shuffled order per epoch; each is cut to at most T+1 positions.
class KdMemorySource : public BatchSource {
 public:
  KdMemorySource(std::vector<std::vector<KdPosition>> seqs, int64_t seq_len, int64_t batch_size, int64_t top_k,
                 uint64_t seed);
  Batch next() override;
  nlohmann::json state() const override;
  void restore(const nlohmann::json& j) override;
  std::string describe() const override;
  bool has_kd() const override { return true; }

 private:
  void shuffle_epoch();
  std::vector<std::vector<KdPosition>> seqs_;
  int64_t T_, B_, K_;
  uint64_t seed_;
  int64_t epoch_ = 0, cursor_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace bkd

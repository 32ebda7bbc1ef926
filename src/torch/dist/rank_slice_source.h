#pragma once
// One rank's part of a global batch. The wrapped source yields global batches of B x world_size
// sequences in the one order its seed fixes; rank r keeps sequences [r*B, (r+1)*B). So the sequences
// of one optimizer step are the same whatever the world size (2 ranks x B = 1 rank x 2B = 1 rank x B
// with 2 accumulation steps), and the data position in a checkpoint is the global one: a run resumes
// with another world size from the same state.
#include <memory>

#include "torch/train/batch_source.h"

namespace bkd {

// Rows [begin, begin + count) of every tensor of a batch; `tokens` recounted for the slice.
Batch slice_batch(const Batch& b, int64_t begin, int64_t count);

class RankSliceSource : public BatchSource {
 public:
  // `global` yields batches of per_rank_batch * world_size sequences.
  RankSliceSource(std::unique_ptr<BatchSource> global, int rank, int world_size, int64_t per_rank_batch);
  Batch next() override;
  nlohmann::json state() const override { return global_->state(); }
  void restore(const nlohmann::json& j) override { global_->restore(j); }
  std::string describe() const override;
  bool has_kd() const override { return global_->has_kd(); }

 private:
  std::unique_ptr<BatchSource> global_;
  int rank_, world_;
  int64_t B_;
};

}  // namespace bkd

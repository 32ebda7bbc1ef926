#include "torch/dist/rank_slice_source.h"

#include "core/util/error.h"

namespace bkd {
namespace {
torch::Tensor rows(const torch::Tensor& t, int64_t begin, int64_t count) {
  return t.defined() ? t.narrow(0, begin, count).contiguous() : t;
}
}  // namespace

Batch slice_batch(const Batch& b, int64_t begin, int64_t count) {
  if (begin < 0 || count < 1 || begin + count > b.inputs.size(0))
    throw Error("slice [" + std::to_string(begin) + ", " + std::to_string(begin + count) + ") of a batch of " +
                std::to_string(b.inputs.size(0)) + " sequences");
  Batch s;
  s.inputs = rows(b.inputs, begin, count);
  s.targets = rows(b.targets, begin, count);
  s.loss_mask = rows(b.loss_mask, begin, count);
  s.key_valid = rows(b.key_valid, begin, count);
  s.kd.ids = rows(b.kd.ids, begin, count);
  s.kd.logprobs = rows(b.kd.logprobs, begin, count);
  s.kd.other = rows(b.kd.other, begin, count);
  s.kd.valid = rows(b.kd.valid, begin, count);
  s.tokens = s.key_valid.sum().item<int64_t>();
  return s;
}

RankSliceSource::RankSliceSource(std::unique_ptr<BatchSource> global, int rank, int world_size, int64_t per_rank_batch)
    : global_(std::move(global)), rank_(rank), world_(world_size), B_(per_rank_batch) {}

Batch RankSliceSource::next() {
  Batch g = global_->next();
  if (g.inputs.size(0) != B_ * world_)
    throw Error("a global batch of " + std::to_string(g.inputs.size(0)) + " sequences, expected " +
                std::to_string(B_) + " x " + std::to_string(world_) + " ranks");
  return slice_batch(g, B_ * rank_, B_);
}

std::string RankSliceSource::describe() const {
  return global_->describe() + "; rank " + std::to_string(rank_) + " takes sequences [" + std::to_string(B_ * rank_) +
         ", " + std::to_string(B_ * (rank_ + 1)) + ") of each global batch of " + std::to_string(B_ * world_);
}

}  // namespace bkd

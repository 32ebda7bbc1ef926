#pragma once
// KD shards (core/kd/kd_shard.h) as training sequences: rows grouped by seq_id and ordered by pos, long
// sequences cut into windows of T+1 positions that overlap by one (so every row's distribution trains the
// logits before it exactly once), then served like KdMemorySource.
#include <memory>
#include <string>
#include <vector>

#include "torch/train/batch_source.h"

namespace bkd {

// What was read from the shards (the caller compares it with the manifest's counts).
struct KdReadStats {
  int64_t shards = 0, rows = 0, sequences = 0;
};

// Reads every shard fully. Throws Error naming the shard when a sequence has gaps or repeated positions.
std::vector<std::vector<KdPosition>> read_kd_sequences(const std::vector<std::string>& shard_paths, int64_t seq_len,
                                                       int64_t* max_k = nullptr, KdReadStats* stats = nullptr);

std::unique_ptr<KdMemorySource> kd_shard_source(const std::vector<std::string>& shard_paths, int64_t seq_len,
                                                int64_t batch_size, uint64_t seed, KdReadStats* stats = nullptr);

}  // namespace bkd

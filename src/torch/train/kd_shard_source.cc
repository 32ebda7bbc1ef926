#include "torch/train/kd_shard_source.h"

#include <algorithm>
#include <map>

#include "core/kd/kd_shard.h"
#include "core/util/error.h"

namespace bkd {

std::vector<std::vector<KdPosition>> read_kd_sequences(const std::vector<std::string>& shard_paths, int64_t seq_len,
                                                       int64_t* max_k, KdReadStats* stats) {
  std::map<std::pair<size_t, int64_t>, std::vector<std::pair<int32_t, KdPosition>>> by_seq;  // (shard, seq_id)
  int64_t k_max = 1;
  for (size_t s = 0; s < shard_paths.size(); ++s) {
    KdShardReader reader(shard_paths[s]);
    KdBatch b;
    while (reader.next(b)) {
      for (size_t r = 0; r < b.rows(); ++r) {
        KdPosition p;
        p.token = b.token_id[r];
        p.valid = b.kd_valid[r] != 0;
        const int64_t o0 = b.topk_offsets[r], o1 = b.topk_offsets[r + 1];
        p.ids.assign(b.topk_ids.begin() + o0, b.topk_ids.begin() + o1);
        p.logprobs.assign(b.topk_logprobs.begin() + o0, b.topk_logprobs.begin() + o1);
        p.other = b.other_logprob[r];
        k_max = std::max<int64_t>(k_max, o1 - o0);
        by_seq[{s, b.seq_id[r]}].emplace_back(b.pos[r], std::move(p));
        if (stats) ++stats->rows;
      }
    }
  }
  if (stats) {
    stats->shards += static_cast<int64_t>(shard_paths.size());
    stats->sequences += static_cast<int64_t>(by_seq.size());
  }
  std::vector<std::vector<KdPosition>> out;
  for (auto& [key, rows] : by_seq) {
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (size_t i = 0; i < rows.size(); ++i)
      if (rows[i].first != rows[0].first + int32_t(i))
        throw Error("KD shard " + shard_paths[key.first] + ": sequence " + std::to_string(key.second) +
                        " has a gap or a repeated position near pos " + std::to_string(rows[i].first),
                    "re-run `bitnet-kde collect` for that shard");
    // Windows of T+1 rows starting every T rows.
    for (size_t start = 0; start + 1 < rows.size(); start += size_t(seq_len)) {
      const size_t end = std::min(rows.size(), start + size_t(seq_len) + 1);
      std::vector<KdPosition> w;
      for (size_t i = start; i < end; ++i) {
        if (i + 1 == end && end < rows.size()) w.push_back(rows[i].second);  // also starts the next window
        else w.push_back(std::move(rows[i].second));
      }
      out.push_back(std::move(w));
    }
  }
  if (max_k) *max_k = k_max;
  return out;
}

std::unique_ptr<KdMemorySource> kd_shard_source(const std::vector<std::string>& shard_paths, int64_t seq_len,
                                                int64_t batch_size, uint64_t seed, KdReadStats* stats) {
  int64_t k = 1;
  auto seqs = read_kd_sequences(shard_paths, seq_len, &k, stats);
  if (seqs.empty()) throw Error("the KD shards hold no sequence with two or more positions", "re-run collect");
  return std::make_unique<KdMemorySource>(std::move(seqs), seq_len, batch_size, k, seed);
}

}  // namespace bkd

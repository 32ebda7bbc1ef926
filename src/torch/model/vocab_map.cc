#include "torch/model/vocab_map.h"

#include <algorithm>
#include <cmath>

#include "core/data/token_file.h"
#include "core/util/error.h"

namespace bkd {

torch::Tensor VocabMap::to_model_lut() const {
  const int64_t rare = int64_t(kept.size());
  torch::Tensor lut = torch::full({full_size}, rare, torch::kLong);
  auto a = lut.accessor<int64_t, 1>();
  for (size_t i = 0; i < kept.size(); ++i) a[kept[i]] = int64_t(i);
  return lut;
}

torch::Tensor VocabMap::to_model(const torch::Tensor& ids) const {
  if (!enabled()) return ids;
  if (ids.numel() > 0) {
    const int64_t lo = ids.min().item<int64_t>(), hi = ids.max().item<int64_t>();
    if (lo < 0 || hi >= full_size)
      throw Error("token id " + std::to_string(lo < 0 ? lo : hi) + " is outside the teacher's vocabulary of " +
                  std::to_string(full_size));
  }
  return to_model_lut().to(ids.device()).index_select(0, ids.reshape({-1}).to(torch::kLong)).view(ids.sizes());
}

torch::Tensor VocabMap::expand_logits(const torch::Tensor& logits) const {
  if (!enabled()) return logits;
  if (logits.size(-1) != model_vocab())
    throw Error("teacher logits have " + std::to_string(logits.size(-1)) + " classes, the vocabulary map expects " +
                std::to_string(model_vocab()));
  torch::Tensor lut = to_model_lut().to(logits.device());
  torch::Tensor out = logits.index_select(-1, lut);
  if (rare_count() > 0) {
    torch::Tensor is_rare = (lut == int64_t(kept.size())).to(logits.scalar_type());
    out = out - is_rare * std::log(double(rare_count()));
  }
  return out;
}

VocabMap VocabMap::from_token_counts(const TokenFile& file, int64_t min_count, const std::vector<int32_t>& always) {
  if (min_count < 1) throw Error("vocabulary map: min_count must be >= 1, got " + std::to_string(min_count));
  VocabMap m;
  m.full_size = file.vocab_size();
  std::vector<int64_t> counts(size_t(m.full_size), 0);
  const uint32_t* t = file.tokens();
  for (uint64_t i = 0; i < file.num_tokens(); ++i) ++counts[t[i]];  // the reader checked every id
  for (int32_t id : always) {
    if (id < 0 || id >= m.full_size)
      throw Error("vocabulary map: id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(m.full_size));
    counts[size_t(id)] = std::max(counts[size_t(id)], min_count);
  }
  for (int64_t id = 0; id < m.full_size; ++id)
    if (counts[size_t(id)] >= min_count) m.kept.push_back(int32_t(id));
  return m;
}

nlohmann::json VocabMap::to_json() const { return {{"full_size", full_size}, {"kept", kept}}; }

VocabMap VocabMap::from_json(const nlohmann::json& j) {
  VocabMap m;
  m.full_size = j.at("full_size").get<int64_t>();
  m.kept = j.at("kept").get<std::vector<int32_t>>();
  for (size_t i = 0; i < m.kept.size(); ++i)
    if (m.kept[i] < 0 || m.kept[i] >= m.full_size || (i > 0 && m.kept[i] <= m.kept[i - 1]))
      throw Error("vocabulary map: kept ids must be ascending and inside [0, " + std::to_string(m.full_size) +
                  "), entry " + std::to_string(i) + " is " + std::to_string(m.kept[i]),
                  "the teacher checkpoint's state.json is damaged; retrain the teacher");
  return m;
}

}  // namespace bkd

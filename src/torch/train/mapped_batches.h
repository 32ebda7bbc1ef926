#pragma once
// Batches with their token ids mapped to a model's classes (the teacher's trimmed head, vocab_map.h).
#include <memory>

#include "torch/model/vocab_map.h"
#include "torch/train/batch_source.h"

namespace bkd {

// Batches of `inner` with inputs and targets mapped to the model's classes (position and state are
// the inner source's); `inner` itself when the map is the identity.
std::unique_ptr<BatchSource> map_batches(std::unique_ptr<BatchSource> inner, const VocabMap& map);

}  // namespace bkd

#pragma once
// Bridge from the LibTorch student to the packed engine: copies the latent (float) weights out of a
// Transformer in the engine's layout, and compares the two forward passes on the same tokens.
#include <vector>

#include "core/engine/packed_model.h"
#include "torch/model.h"

namespace bkd {

FloatModelWeights float_weights_of(Transformer& model);

struct ParityResult {
  int64_t positions = 0, argmax_agree = 0;
  double max_abs_diff = 0, max_abs_logit = 0;
};
// Logits of model->forward (fake-quant, the model's current mode) vs the engine over `packed`
// (same mode) for one sequence of tokens.
ParityResult engine_parity(Transformer& model, const PackedModel& packed, const std::vector<int32_t>& tokens, int threads);

}  // namespace bkd

#pragma once
// Bridge from the LibTorch student to the packed engine: copies the latent (float) weights out of a
// Transformer in the engine's layout and packs a training checkpoint the way `export` does (the
// comparison of the two forward passes: engine_parity.h).
#include <string>
#include <vector>

#include "core/engine/packed_model.h"
#include "torch/model/model.h"

namespace bkd {

FloatModelWeights float_weights_of(Transformer& model);

// A student checkpoint folder loaded for export: the model in its training-time activation mode.
struct StudentCheckpoint {
  Transformer model{nullptr};
  QuantMode mode = QuantMode::TernaryA8;
  int64_t step = 0;
  std::string dir;
};
// Throws Error naming the folder when it is not a BitNet (ternary) student checkpoint.
StudentCheckpoint load_student_checkpoint(const std::string& dir);
// The packed model of a loaded checkpoint; records the activation mode in trained_mode.
PackedModel pack_student(StudentCheckpoint& ckpt, TableFormat tables);

}  // namespace bkd

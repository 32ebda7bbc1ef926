#pragma once
// Bridge from the LibTorch student to the packed engine: copies the latent (float) weights out of a
// Transformer in the engine's layout, packs a training checkpoint the way `export` does, and
// compares the two forward passes on the same tokens (random samples or held-out text windows).
#include <string>
#include <vector>

#include "core/engine/kernels.h"
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

struct ParityResult {
  int64_t positions = 0, argmax_agree = 0;
  double max_abs_diff = 0, max_abs_logit = 0;
  // Computed tolerance (held-out windows): per position, the forward-error bound of the head's fp32
  // dot products, 2 * gamma_D * max_v sum_k |h_k E_vk| (gamma_D = D u / (1 - D u), u = 2^-24), plus
  // 64 u per layer of that same magnitude for the float steps upstream (norms, scales, softmax),
  // which see the same integer codes on both sides. max_tolerance is the largest such bound;
  // worst_diff_over_tolerance the largest diff / bound over positions (<= 1: within the bound).
  double max_tolerance = 0, worst_diff_over_tolerance = 0;
  // Positions whose every logit is within that bound. The bound assumes both sides quantize every
  // activation to the same integer code; a value that lands within rounding of a code boundary can
  // take the neighbouring code on one side, which moves that position by more (rare, and reported).
  int64_t within_tolerance = 0;
  // Disagreements where the reference's top-1 / top-2 margin is within twice the position's bound
  // (a near tie that rounding may legitimately flip), and the others.
  int64_t near_tie_disagree = 0, clear_disagree = 0;
  int64_t windows = 0;
  // Windows whose every position is within the bound. A code-boundary event at position t moves the
  // positions after it in the same window too (causal attention carries it), so events are counted
  // per window: windows - windows_within is at least the number of events.
  int64_t windows_within = 0;
};
// Logits of model->forward (fake-quant, the model's current mode) vs the engine over `packed` (same
// mode) over several windows (each at most the model's context, run from position 0), with
// the computed tolerance and near-tie accounting filled in; results accumulate over windows.
// `kernels`: the engine's kernel set (nullptr: the best this CPU runs; tests force each one).
ParityResult engine_parity_windows(Transformer& model, const PackedModel& packed,
                                   const std::vector<std::vector<int32_t>>& windows, int threads,
                                   const KernelSet* kernels = nullptr);

}  // namespace bkd

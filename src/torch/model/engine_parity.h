#pragma once
// Parity of the packed engine with the LibTorch student it was packed from: the same tokens through
// model->forward (the training-time fake-quant forward, in the model's mode) and through the engine
// (same mode), logit by logit, against a bound derived from what both sides observably computed.
//
// What is compared, and why it is a bound and not a tolerance (docs/ENGINE.md, "Parity"):
// * The weights: the engine's packed codes and scale against the checkpoint's quantized weights.
// * Every BitLinear input: the engine's integer codes and step (QuantizedActs) against the codes
//   recovered from the values LibTorch's matmul received. A value within rounding of a code boundary
//   can take the neighbouring code on one side (the two sides sum in different orders); what comes
//   after such a flip may then differ by more. Any other code difference is a bug.
// * The logits, against a per-logit forward-error bound. The residual stream is changed only by the
//   wo and w_down outputs, and each of those is a function of its input's codes and step, which are
//   observed on both sides; so the bound needs no model of attention, the gate or the quantizers'
//   inputs. It is built from: each wo / w_down output's difference (the codes that differ, the two
//   steps, fp32 summation over K terms, the engine's two scalings), each residual add's rounding,
//   the final RMSNorm's sensitivity and rounding, and the head's fp32 dot products. It holds for
//   any summation order on either side (any BLAS, any kernel set, with or without FMA), with
//   gamma_n = n u / (1 - n u), u = 2^-24, and includes the effect of the codes that differ.
// The bound needs F32 tables (other formats round the embeddings); for BF16 / I8 tables only the
// plain differences are reported.
#include <cstdint>
#include <vector>

#include "core/engine/kernels.h"
#include "core/engine/packed_model.h"
#include "torch/model/model.h"

namespace bkd {

// The most boundary flips (ParityResult) there may be, as a fraction of the codes compared. A code
// flips only where the two sides' values before rounding, in steps, lie on either side of
// a half-integer. They differ by the float rounding of the computation upstream (sums over K <= a
// few thousand terms, norms, attention, the gate; LibTorch's vectorized exp against std::exp for
// SiLU): a few ulps of values up to 127 steps, so ~1e-5 to 1e-3 of a step, and about that fraction
// of codes can land within it of a boundary. A quantizer, scale or kernel error moves most codes of
// the rows it touches, or moves them by several steps (max_flip_step > 1). The cap is the top of
// that estimate, ~80x the largest fraction measured (1.2e-5; docs/ENGINE.md, "Parity").
constexpr double kMaxBoundaryFlipFraction = 1e-3;

struct ParityResult {
  int64_t windows = 0, positions = 0, argmax_agree = 0;
  double max_abs_diff = 0, max_abs_logit = 0;
  // Top-1 disagreements where the reference's margin between the two tokens is within the sum of
  // their logits' bounds (rounding may flip them), and the others (never, while within the bound).
  int64_t near_tie_disagree = 0, clear_disagree = 0;

  // The bound applies: F32 tables. Off (BF16 / I8 tables): the fields below it stay 0.
  bool bounded = false;
  // Packed projections whose codes differ from the checkpoint's quantized weights, or whose scale
  // differs by more than one rounding (pack_ternary stores a float of the same absmean).
  int64_t weight_mismatches = 0;
  // Activation codes compared (every BitLinear input, every position) and how many differ. A code
  // that differs changes what comes after it: later projections of its row and, through attention,
  // of later rows, by any number of steps. So differences are sorted by cause: a flip is a differing
  // code with no differing code upstream of it (at an earlier projection group, at its row or
  // before); the rest follow from flips. Flips must be one step (max_flip_step) and rare.
  int64_t codes_compared = 0, codes_differ = 0, boundary_flips = 0, max_flip_step = 0;
  // Rows whose LibTorch values are not a whole number of one step each (a quantizer that disagrees
  // with the engine's; their positions count as outside the bound).
  int64_t rows_off_grid = 0;
  // Positions at or after the first differing code of their window: the bound covers them (it
  // includes the differing codes' effect), reported so a reader sees how much of a run they are.
  int64_t positions_after_code_flip = 0;
  // Positions whose every logit is within its bound, the largest bound, and the largest ratio
  // |diff| / bound over all logits (<= 1: every logit within its bound).
  int64_t positions_within = 0;
  double max_bound = 0, worst_diff_over_bound = 0;

  // All of the above as one verdict: bounded, identical weights, every logit within its bound, and
  // the activation codes agree but for one-step boundary flips (at most `max_flip_fraction` of the
  // codes compared) and what follows from them.
  bool codes_and_logits_agree(double max_flip_fraction) const;
};

// Runs every window (each at most the model's context, from position 0) through both and
// accumulates the comparison. `kernels`: the engine's kernel set (nullptr: the best this CPU runs;
// the tests force each one). The model is used in eval mode and left as it was.
ParityResult engine_parity_windows(Transformer& model, const PackedModel& packed,
                                   const std::vector<std::vector<int32_t>>& windows, int threads,
                                   const KernelSet* kernels = nullptr);

}  // namespace bkd

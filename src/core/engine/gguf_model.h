#pragma once
// Packed model files in a GGUF (v3) container, readable by generic GGUF tools:
//   metadata: general.architecture = "bitnet-kde", bitnet-kde.config = the ModelConfig as JSON,
//             bitnet-kde.ternary_layout = "2bit-code-w+1-block256-v1" (ternary_format.h), plus the
//             usual llama-style shape keys for humans; bitnet-kde.quant_mode = "a8" | "a4" (the
//             student's training-time activation mode) when PackedModel::trained_mode is set.
//   tensors:  every projection as an I8 tensor [rows, row_bytes] of packed bytes plus an F32
//             "<name>.scale"; norms F32; embed / lm_head as F32, BF16 or I8 (+ "<name>.row_scale").
// Tensor names follow src/torch/model/model.h ("layers.3.wq", "embed", ...).
#include <string>

#include "core/engine/packed_model.h"

namespace bkd {

void save_packed_model(const PackedModel& m, const std::string& path);  // atomic (temp + rename)
// Throws Error naming the path and what is wrong (not GGUF, other architecture, missing or
// mis-shaped tensor, truncated data, invalid ternary codes).
PackedModel load_packed_model(const std::string& path);

}  // namespace bkd

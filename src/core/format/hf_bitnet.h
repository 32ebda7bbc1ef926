#pragma once
// The student as a Hugging Face folder in the layout of transformers' BitNet class
// (BitNetForCausalLM, model_type "bitnet", as microsoft/bitnet-b1.58-2B-4T ships it), and back.
// docs/FORMAT.md "Hugging Face export" maps every tensor.
//
//   config.json             architecture, shapes, hidden_act ("relu2" or "silu"), tie_word_embeddings,
//                           quantization_config {"quant_method": "bitnet", "linear_class":
//                           "autobitlinear", "quantization_mode": "offline"}: packed ternary weights,
//                           output = linear(act_quant(x), W) * weight_scale
//   model.safetensors       the packed release's layout: each projection's `weight` is U8 [out/4, in],
//                           byte (r, c) holding W[i*out/4 + r, c] + 1 in bits 2i..2i+1 (i = 0..3), and
//                           `weight_scale` F32 [1] (the absmean scale); norms and embeddings F32 (BF16
//                           when the tables are bf16)
//   generation_config.json  bos/eos ids
//   tokenizer.model, tokenizer_config.json, special_tokens_map.json   the student's SentencePiece model
//
// Packed weights rather than bf16 latent ones: the ternary codes are the model (the latent weights
// are a training device), a reader gets exactly the engine's function, and the file is ~8x smaller.
#include <string>
#include <vector>

#include "core/engine/packed_model.h"
#include "core/tokenizer/spm_tokenizer.h"

namespace bkd {

// Why this model cannot be written in the layout (empty: it can).
std::vector<std::string> hf_export_problems(const ModelConfig& c);

// Writes the folder (into a temporary sibling, renamed into place: never a half folder). Throws
// UsageError with every problem.
void write_hf_bitnet(const PackedModel& m, const SpmTokenizer& tok, const std::string& dir);

// Reads a folder written by write_hf_bitnet (or any packed autobitlinear BitNet folder with the same
// tensors); throws Error naming the file and what is wrong.
PackedModel read_hf_bitnet(const std::string& dir);

// Whether `path` is a folder holding a Hugging Face config.json.
bool is_hf_folder(const std::string& path);

}  // namespace bkd

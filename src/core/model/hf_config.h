#pragma once
// Hugging Face causal-LM folders as teachers: config.json of the Llama family (LlamaForCausalLM,
// MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM) mapped onto the project's ModelConfig,
// and the weight files' tensor names mapped onto its parameter names. What each family differs in:
//   Llama    attention_bias (q/k/v/o biases), mlp_bias (refused), rope_scaling "llama3", head_dim
//   Mistral  sliding_window (the context is capped at the window, so the mask never needs it)
//   Qwen2    q/k/v biases always, no o bias; use_sliding_window (refused when true)
//   Qwen3    per-head q_norm/k_norm before RoPE, head_dim * heads may differ from hidden_size,
//            attention_bias as Llama
// All: pre-RMSNorm blocks without SubLN, SiLU-gated MLP (hidden_act "silu", anything else refused),
// rotate-half RoPE (the layout Hugging Face stores q/k in), tied or untied head.
// The weights are read by the LibTorch side (torch/model/hf_model.h); this file knows only names,
// shapes and the files that hold them.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/model/model_config.h"

namespace bkd {

struct HfModelInfo {
  std::string dir;
  std::string architecture;  // e.g. "Qwen3ForCausalLM"
  ModelConfig config;        // bitlinear = false, sub_norm = false
  int64_t max_position_embeddings = 0;
  int64_t sliding_window = 0;  // 0: none (config.max_seq_len is capped at it otherwise)
  int64_t bos_id = -1, eos_id = -1;  // from config.json; -1 when absent
  std::string torch_dtype;           // as config.json says ("bfloat16", ...); the files' dtypes decide
};

// Reads DIR/config.json. Throws Error naming the file and the field for anything unsupported or
// missing (another architecture, hidden_act other than silu, mlp_bias, an unknown rope_scaling type).
HfModelInfo read_hf_config(const std::string& dir);

// One weight: the name in the safetensors files, the project's parameter name, the expected shape.
struct HfTensorName {
  std::string hf_name, param_name;
  std::vector<int64_t> shape;
};
// Every tensor the project's transformer needs from a folder of this config, in parameter order.
std::vector<HfTensorName> hf_tensor_names(const ModelConfig& c);
// Tensors a folder may hold that the transformer does not need (rotary inv_freq buffers, a tied
// model's redundant lm_head.weight).
bool hf_tensor_is_ignorable(const std::string& hf_name, const ModelConfig& c);

// The safetensors files of a folder and which file holds which tensor: model.safetensors.index.json
// ("weight_map") when present, else model.safetensors alone (its tensors are listed by the caller).
// Throws Error when neither exists or the index names a missing file.
struct HfWeightFiles {
  std::vector<std::string> files;              // paths, each once, in index order
  std::map<std::string, std::string> by_name;  // tensor -> path (empty for a single file)
};
HfWeightFiles hf_weight_files(const std::string& dir);

// A short content identity of the folder (SHA-256 over config.json and the safetensors headers'
// lengths and names), for KD traces and caches: another model in the same folder gets another id.
std::string hf_folder_identity(const std::string& dir);

}  // namespace bkd

#pragma once
// Inference on trained checkpoints for the local teacher provider, eval and export:
//   LoadedModel m = load_model(dir);                 // a step_N folder, or a role folder (its latest)
//   torch::Tensor logits = forward_logits(m, ids);   // [T, vocab] float32; row i predicts ids[i+1]
#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/engine/decode_timing.h"
#include "core/model/model_config.h"
#include "core/tokenizer/tokenizer.h"
#include "torch/model/model.h"
#include "torch/model/vocab_map.h"

namespace bkd {
class Settings;
class LocalLanguageModel;

struct LoadedModel {
  Transformer model{nullptr};
  ModelConfig config;
  QuantMode mode = QuantMode::FullPrecision;
  std::string checkpoint;  // the step_N folder loaded
  nlohmann::json state;    // its state.json (role, step, seen tokens, flip, ...)
  VocabMap vocab_map;      // a teacher with a trimmed head (state.json "vocab_map"); disabled otherwise
  torch::Device device = torch::kCPU;        // where the weights live (ids go there, logits come back)
  torch::ScalarType weight_dtype = torch::kFloat;  // kBFloat16: forward passes run under autocast
  // The vocabulary callers see: ids in, logits out (the external one when the head is trimmed).
  int64_t vocab_size() const { return vocab_map.enabled() ? vocab_map.full_size : config.vocab_size; }
};

// Throws Error naming the folder when there is no complete checkpoint.
LoadedModel load_model(const std::string& checkpoint_dir);
// Full-sequence logits in float32 on the CPU (autocast only for bf16 weights), eval mode, no gradients. Ids must be < vocab_size()
// and at most max_seq_len long; with a vocabulary map, ids are mapped in and the logits expanded to
// the external vocabulary ([T, vocab_size()]).
torch::Tensor forward_logits(LoadedModel& m, const std::vector<int32_t>& ids);
// The model's own logits, [T, config.vocab_size] float32: with a vocabulary map, one column per model
// class (kept ids, then the rare class), not expanded. The same checks as forward_logits.
torch::Tensor forward_model_logits(LoadedModel& m, const std::vector<int32_t>& ids);

// Next-token logits for contexts that mostly extend the previous one (greedy decoding): the keys and
// values of the longest common prefix with the last context are kept (Transformer::forward_cached),
// so a decoded token costs one position, not a forward over the whole context. Equal, to float
// rounding, to the last row of forward_logits(m, context). Not thread-safe; `m` must outlive it.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(LoadedModel& m) : m_(m) {}
  torch::Tensor next_logits(const std::vector<int32_t>& context);  // [vocab_size()] float32
  int64_t cached_positions() const { return cache_.length(); }
  void reset() { cache_.clear(), tokens_.clear(); }

 private:
  LoadedModel& m_;
  KvCache cache_;
  std::vector<int32_t> tokens_;  // the context the cache holds
};

// Greedy decode speed of a LibTorch model, measured as measure_decode_tps measures the packed student
// (core/engine/decode_timing.h): the prompt in one forward pass, then one timed step per generated token
// (IncrementalDecoder: one position and the head, logits over the external vocabulary), argmax outside.
DecodeTiming measure_torch_decode_tps(LoadedModel& m, const std::vector<int32_t>& prompt, int64_t n_tokens);

// The local teacher with its tokenizer, for eval and the experiment: the Hugging Face folder in
// TEACHER_MODEL_DIR (on DEVICE, weights per TEACHER_DTYPE) or the trained teacher (CKPT_DIR/teacher
// with the GPT-2 BPE). `bos` starts every scored text: config.json's bos_token_id for a Hugging Face
// model (Llama-3's <|begin_of_text|>, Qwen's <|endoftext|>), else the tokenizer's end of text (GPT-2's
// document separator, what the trained teacher saw between documents).
struct LocalTeacherModel {
  LoadedModel model;
  std::unique_ptr<Tokenizer> tokenizer;
  int32_t bos = -1;
};
LocalTeacherModel load_local_teacher(const Settings& s);

// The trained offline teacher as core's LocalLanguageModel (GPT-2 BPE tokenizer from GPT2_BPE_DIR,
// checkpoint from CKPT_DIR/teacher), or the Hugging Face folder in TEACHER_MODEL_DIR. nullptr when no
// teacher checkpoint exists.
std::unique_ptr<LocalLanguageModel> make_torch_teacher(const Settings& s, const std::string& model_name);

}  // namespace bkd

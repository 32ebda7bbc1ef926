#pragma once
// The student as a GGUF file for llama.cpp's `bitnet` architecture (and what is built on llama.cpp:
// llama-cli, llama-server, Ollama, LM Studio). docs/FORMAT.md "llama.cpp export" maps every tensor.
//
// llama.cpp's bitnet graph computes, per block, the student's function (src/torch/model/model.h):
// RMSNorm -> q/k/v (GQA) -> RoPE (NeoX halves, like ours) -> attention -> attn_sub_norm -> wo ->
// residual; RMSNorm -> gate/up -> act(gate) * up -> ffn_sub_norm -> w_down -> residual; final norm;
// the head is token_embd (tied embeddings only). Its act is SiLU whatever the file says (the
// llama.cpp in node-llama-cpp 3.21.1 ignores `bitnet.hidden_activation`; newer ones read it but map
// no value to squared ReLU), so only STUDENT_FFN_ACTIVATION=silu students are exported and the
// others are refused (llama_cpp_export_problems): never a file that loads and computes another function.
// It quantizes activations itself (8-bit, per block of the weight type), not per token as the engine
// does: logits agree closely, not exactly (docs/FORMAT.md gives the measured agreement).
#include <cstdint>
#include <string>
#include <vector>

#include "core/engine/packed_model.h"
#include "core/util/gguf_writer.h"
#include "core/tokenizer/spm_tokenizer.h"

namespace bkd {

struct LlamaCppExportOptions {
  GgmlType ternary = GgmlType::TQ2_0;  // TQ2_0 (2.06 bits/weight) or TQ1_0 (1.69)
  // Rows whose length is not a multiple of 256 cannot be TQ blocks; true stores them as exact Q4_0
  // (ternary codes kept, 4.5 bits/weight), false refuses.
  bool allow_q4_0_rows = true;
};

struct LlamaCppTensor {
  std::string name;
  GgmlType type;
  uint64_t bytes;
};

struct LlamaCppExport {
  std::string path;
  std::vector<LlamaCppTensor> tensors;
  uint64_t bytes = 0;                    // tensor data
  std::vector<std::string> q4_0_tensors;  // ternary tensors stored as Q4_0 (rows not a multiple of 256)
};

// A vocabulary as GGUF's tokenizer.ggml.* keys hold it: llama.cpp's "llama" model (SentencePiece:
// pieces with scores, dummy prefix) or its "gpt2" model (byte-level BPE: pieces as stored, e.g. "Ġthe",
// the merges, and the name of llama.cpp's pre-tokenizer for it).
struct GgufVocab {
  std::string model, pre;           // "llama" + "default" | "gpt2" + "gpt-2"
  std::vector<std::string> pieces;
  std::vector<float> scores;        // "llama" only
  std::vector<int32_t> types;       // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
  std::vector<std::string> merges;  // "gpt2" only: "first second", best first
  int32_t bos = -1, eos = -1, unk = -1;
  bool add_space_prefix = false;
};
GgufVocab gguf_vocab(const SpmTokenizer::Vocab& v);
// The student tokenizer's vocabulary: a SentencePiece model or GPT-2's BPE (the project's own teacher's,
// with STUDENT_TOKENIZER=teacher). A Hugging Face tokenizer.json is refused (UsageError): llama.cpp
// names each family's pre-tokenizer ("llama-bpe", "qwen2", ...) and that mapping is not written yet.
GgufVocab gguf_vocab(const Tokenizer& tok);

// Why this student cannot be written for llama.cpp's bitnet graph (empty: it can).
std::vector<std::string> llama_cpp_export_problems(const ModelConfig& c, const LlamaCppExportOptions& o);

// Writes the file atomically. Throws UsageError listing every problem, or Error on an inconsistent
// vocabulary (its size must equal the model's).
LlamaCppExport write_llama_cpp_gguf(const PackedModel& m, const GgufVocab& vocab, const std::string& path,
                                    const LlamaCppExportOptions& o = {});

}  // namespace bkd

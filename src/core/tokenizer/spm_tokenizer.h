#pragma once
// The student tokenizer: SentencePiece BPE with byte fallback, trained on the training split or loaded
// from a .model file. Identity normalization keeps byte offsets exact: token spans index the source text.
#include <memory>
#include <string>
#include <vector>

#include "core/tokenizer/tokenizer.h"

struct bkd_spm;

namespace bkd {

struct SpmTrainOptions {
  int vocab_size = 8000;
  int threads = 0;        // 0 = all cores
  uint64_t seed = 1234;   // SentencePiece training is deterministic given input order; kept for the record
};

class SpmTokenizer : public Tokenizer {
 public:
  // Loads a .model file; a missing or corrupt file -> Error naming it and the command that makes it.
  static std::unique_ptr<SpmTokenizer> load(const std::string& model_path);
  static std::unique_ptr<SpmTokenizer> from_serialized(const std::string& model_bytes, const std::string& origin);
  // Trains on documents (split into lines internally); returns the serialized model.
  static std::string train(const std::vector<std::string>& documents, const SpmTrainOptions& opts);

  ~SpmTokenizer() override;
  std::string kind() const override { return "sentencepiece"; }
  std::vector<TokenSpan> encode(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::string piece(int32_t id) const override;
  // A piece's bytes after another token: "▁the" -> " the", byte pieces "<0xE2>" -> the byte itself,
  // control pieces -> "".
  std::string continuation_bytes(int32_t id) const override;
  int32_t vocab_size() const override;
  int32_t eos_id() const override;
  std::string hash() const override { return hash_; }
  bool is_byte(int32_t id) const;
  int32_t piece_to_id(const std::string& piece) const;  // unk_id() when absent
  int32_t unk_id() const;
  const std::string& serialized() const { return model_bytes_; }

  // The whole vocabulary as model files list it (GGUF tokenizer.ggml.*, Hugging Face exports).
  struct Vocab {
    std::vector<std::string> pieces;  // as stored: "▁the", "<0x0A>", "<s>"
    std::vector<float> scores;
    std::vector<int32_t> types;  // 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
    int32_t bos = -1, eos = -1, unk = -1;
  };
  Vocab vocab() const;

 private:
  SpmTokenizer() = default;
  bkd_spm* sp_ = nullptr;  // owned; freed through the module (see src/spm_shim/spm_shim.h)
  int32_t anchor_id_ = -1;  // a piece that decodes to visible text, for continuation_bytes
  std::string model_bytes_, hash_;
};

}  // namespace bkd

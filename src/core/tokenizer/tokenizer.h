#pragma once
// Common interface of the student (SentencePiece) and teacher (GPT-2 BPE) tokenizers.
// encode() reports each token's byte span in the source text: KD projection aligns teacher and
// student positions by these offsets.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bkd {

struct TokenSpan {
  int32_t id;
  uint32_t begin;  // byte offset of the token's first source byte
  uint32_t end;    // one past its last source byte (begin == end for tokens with no source bytes)
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string kind() const = 0;  // "sentencepiece" | "gpt2-bpe"
  virtual std::vector<TokenSpan> encode(std::string_view text) const = 0;
  virtual std::vector<int32_t> encode_ids(std::string_view text) const;
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // The bytes one token adds to a text when it follows other tokens (what a stream of generated
  // tokens concatenates to). decode({id}) alone can differ: SentencePiece drops a leading space there.
  virtual std::string continuation_bytes(int32_t id) const { return decode({id}); }
  virtual std::string piece(int32_t id) const = 0;  // the vocabulary entry, as stored
  virtual int32_t vocab_size() const = 0;
  virtual int32_t eos_id() const = 0;
  virtual std::string hash() const = 0;  // SHA-256 of the model files: identifies the vocabulary
};

}  // namespace bkd

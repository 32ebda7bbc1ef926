#include "core/data/token_file.h"

#include <cstring>

#include "core/util/error.h"

namespace bkd {
namespace {

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t reserved0;
  uint64_t doc_count;
  uint64_t token_count;
  int32_t vocab_size;
  uint32_t reserved1;
  char tokenizer_hash[64];
  char reserved2[24];
};
static_assert(sizeof(Header) == 128, "token file header must be 128 bytes");

}  // namespace

void write_token_file(const std::string& path, const std::vector<std::vector<int32_t>>& docs, int32_t vocab_size,
                      const std::string& tokenizer_hash) {
  Header h{};
  std::memcpy(h.magic, kTokenFileMagic, 8);
  h.version = kTokenFileVersion;
  h.doc_count = docs.size();
  h.vocab_size = vocab_size;
  std::memset(h.tokenizer_hash, 0, sizeof h.tokenizer_hash);
  std::memcpy(h.tokenizer_hash, tokenizer_hash.data(), std::min<size_t>(64, tokenizer_hash.size()));
  std::vector<uint64_t> offsets{0};
  for (const auto& d : docs) offsets.push_back(offsets.back() + d.size());
  h.token_count = offsets.back();

  std::string bytes;
  bytes.reserve(sizeof h + offsets.size() * 8 + h.token_count * 4);
  bytes.append(reinterpret_cast<const char*>(&h), sizeof h);
  bytes.append(reinterpret_cast<const char*>(offsets.data()), offsets.size() * 8);
  for (const auto& d : docs)
    for (int32_t id : d) {
      if (id < 0 || id >= vocab_size)
        throw Error("token id " + std::to_string(id) + " outside vocabulary [0, " + std::to_string(vocab_size) +
                    ") while writing '" + path + "'");
      uint32_t u = static_cast<uint32_t>(id);
      bytes.append(reinterpret_cast<const char*>(&u), 4);
    }
  write_file_atomic(path, bytes);
}

TokenFile::TokenFile(const std::string& path) : map_(std::make_unique<MappedFile>(path)) {
  auto bad = [&](const std::string& why) {
    return Error("token file '" + path + "' is invalid: " + why, "re-create it with `bitnet-kde prepare`");
  };
  const uint8_t* p = map_->data();
  const size_t n = map_->size();
  if (n < sizeof(Header)) throw bad("shorter than its 128-byte header (" + std::to_string(n) + " bytes)");
  Header h;
  std::memcpy(&h, p, sizeof h);
  if (std::memcmp(h.magic, kTokenFileMagic, 8) != 0) throw bad("wrong magic (not a bitnet-kde token file)");
  if (h.version != kTokenFileVersion) throw bad("unsupported version " + std::to_string(h.version));
  if (h.vocab_size <= 0) throw bad("vocabulary size " + std::to_string(h.vocab_size));
  const uint64_t max_entries = n / 4;
  if (h.doc_count >= max_entries || h.token_count > max_entries) throw bad("counts exceed the file size");
  const uint64_t need = sizeof(Header) + (h.doc_count + 1) * 8 + h.token_count * 4;
  if (need != n)
    throw bad("size " + std::to_string(n) + " bytes, header says " + std::to_string(need) + " (truncated?)");
  doc_count_ = h.doc_count;
  token_count_ = h.token_count;
  vocab_size_ = h.vocab_size;
  tokenizer_hash_.assign(h.tokenizer_hash, strnlen(h.tokenizer_hash, sizeof h.tokenizer_hash));
  offsets_ = reinterpret_cast<const uint64_t*>(p + sizeof(Header));
  tokens_ = reinterpret_cast<const uint32_t*>(p + sizeof(Header) + (doc_count_ + 1) * 8);
  if (offsets_[0] != 0 || offsets_[doc_count_] != token_count_) throw bad("document offsets do not cover the tokens");
  for (uint64_t d = 0; d < doc_count_; ++d)
    if (offsets_[d] > offsets_[d + 1]) throw bad("document offsets decrease at document " + std::to_string(d));
  for (uint64_t i = 0; i < token_count_; ++i)
    if (tokens_[i] >= static_cast<uint32_t>(vocab_size_))
      throw bad("token " + std::to_string(i) + " = " + std::to_string(tokens_[i]) + " is outside the vocabulary");
}

std::vector<int32_t> TokenFile::doc(uint64_t d) const {
  if (d >= doc_count_) throw Error("document " + std::to_string(d) + " out of range");
  return std::vector<int32_t>(tokens_ + offsets_[d], tokens_ + offsets_[d + 1]);
}

}  // namespace bkd

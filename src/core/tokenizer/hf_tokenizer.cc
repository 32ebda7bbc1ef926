#include "core/tokenizer/hf_tokenizer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <limits>
#include <mutex>
#include <unordered_map>

#include "core/tokenizer/hf_pretokenizer.h"
#include "core/tokenizer/nfc_offsets.h"
#include "core/util/error.h"
#include "core/util/fs.h"
#include "core/util/hash.h"

namespace bkd {
namespace {

using nlohmann::json;

const char* const kFixFile = "use the tokenizer.json that ships with the model's Hugging Face folder, unmodified";
const char* const kFixUnsupported =
    "bitnet-kde reads byte-level BPE tokenizer.json files (Llama-3, Qwen2/Qwen3, GPT-2) and SentencePiece "
    "tokenizer.model files (Llama-2, Mistral); use a model that ships one of these";
constexpr int32_t kNoRank = std::numeric_limits<int32_t>::max();

// ---- byte-level alphabet ----

// GPT-2's byte -> code point table: printable Latin-1 bytes stand for themselves, the other 68 bytes
// move to U+0100.. in byte order, so every byte is a visible character in vocabulary files.
std::array<uint32_t, 256> byte_level_code_points() {
  std::array<uint32_t, 256> cp{};
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool kept = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    cp[b] = kept ? b : next++;
  }
  return cp;
}

std::string utf8_of(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s.push_back(static_cast<char>(cp));
  } else {  // the table stays below U+0800
    s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
  return s;
}

// A vocabulary entry's bytes; false when it holds a character outside the byte-level alphabet.
bool byte_level_to_bytes(const std::string& piece, const std::array<int16_t, 0x144>& byte_of, std::string* out) {
  out->clear();
  const auto* s = reinterpret_cast<const uint8_t*>(piece.data());
  for (size_t i = 0; i < piece.size();) {
    uint32_t cp = 0;
    const int len = hf_decode_utf8(s + i, piece.size() - i, &cp);
    if (len == 0 || cp >= byte_of.size() || byte_of[cp] < 0) return false;
    out->push_back(static_cast<char>(byte_of[cp]));
    i += static_cast<size_t>(len);
  }
  return true;
}

// ---- merge table: (left id, right id) -> (rank, merged id), open addressing, read-only once built ----

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

class MergeTable {
 public:
  struct Slot {
    uint64_t key = kEmpty;
    int32_t rank = kNoRank;
    int32_t merged = -1;
  };
  static uint64_t key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
  }
  // A later merge of the same pair replaces the earlier one (as the Rust library's map does).
  void put(int32_t a, int32_t b, int32_t rank, int32_t merged) {
    const uint64_t k = key(a, b);
    size_t i = mix64(k) & mask_;
    while (slots_[i].key != kEmpty && slots_[i].key != k) i = (i + 1) & mask_;
    slots_[i] = Slot{k, rank, merged};
  }
  const Slot* find(int32_t a, int32_t b) const {
    const uint64_t k = key(a, b);
    for (size_t i = mix64(k) & mask_;; i = (i + 1) & mask_) {
      if (slots_[i].key == k) return &slots_[i];
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ull;  // ids are below 2^31: never a real key
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// ---- pre-token -> ids cache, shared by threads: mutex-guarded shards, each cleared when full ----

inline uint64_t bytes_hash(std::string_view s) {
  uint64_t h = 0x243F6A8885A308D3ull ^ s.size();
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = mix64(h ^ w);
  }
  if (i < s.size()) {
    uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    h = mix64(h ^ w ^ 0xA5);
  }
  return h | 1;  // 0 marks an empty slot
}

class CacheShard {
 public:
  static constexpr size_t kCapacity = 4096;

  bool get(uint64_t h, std::string_view key, std::vector<int32_t>* out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (slots_.empty()) return false;
    const Slot* s = find(h, key);
    if (!s->hash) return false;
    out->assign(ids_.begin() + s->ids_at, ids_.begin() + s->ids_at + s->ids_len);
    return true;
  }

  void put(uint64_t h, std::string_view key, const std::vector<int32_t>& ids) {
    std::lock_guard<std::mutex> lock(mu_);
    if (slots_.empty()) slots_.resize(kSlots);  // allocated on first use
    if (count_ >= kCapacity) reset();
    Slot* s = find(h, key);
    if (s->hash) return;  // another thread stored it first
    *s = Slot{h, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(key.size()),
              static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(ids.size())};
    keys_.append(key.data(), key.size());
    ids_.insert(ids_.end(), ids.begin(), ids.end());
    ++count_;
  }

  void clear() {
    std::lock_guard<std::mutex> lock(mu_);
    reset();
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_at = 0, key_len = 0, ids_at = 0, ids_len = 0;
  };
  static constexpr size_t kSlots = kCapacity * 2;  // load factor <= 1/2

  // The slot holding key, or the empty slot where it would go.
  Slot* find(uint64_t h, std::string_view key) {
    for (size_t i = h & (kSlots - 1);; i = (i + 1) & (kSlots - 1)) {
      Slot& s = slots_[i];
      if (!s.hash) return &s;
      if (s.hash == h && s.key_len == key.size() && std::memcmp(keys_.data() + s.key_at, key.data(), key.size()) == 0)
        return &s;
    }
  }
  void reset() {
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

// ---- added tokens ----

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool lstrip = false, rstrip = false, normalized = false, special = false;
};

struct Piece {
  size_t begin, end;
  int32_t id;  // an added token's id, or -1 for text to tokenize
};

// Start of the run of White_Space code points that ends at `end`, not before `floor`.
size_t white_space_start(std::string_view t, size_t end, size_t floor) {
  const auto* s = reinterpret_cast<const uint8_t*>(t.data());
  while (end > floor) {
    size_t b = end - 1;
    while (b > floor && (s[b] & 0xC0) == 0x80 && end - b < 4) --b;  // back to a lead byte
    uint32_t cp = 0;
    if (hf_decode_utf8(s + b, end - b, &cp) != static_cast<int>(end - b) || !hf_is_white_space(cp)) break;
    end = b;
  }
  return end;
}

// End of the run of White_Space code points that starts at `begin`, not past `limit`.
size_t white_space_end(std::string_view t, size_t begin, size_t limit) {
  const auto* s = reinterpret_cast<const uint8_t*>(t.data());
  while (begin < limit) {
    uint32_t cp = 0;
    const int len = hf_decode_utf8(s + begin, limit - begin, &cp);
    if (len == 0 || !hf_is_white_space(cp)) break;
    begin += static_cast<size_t>(len);
  }
  return begin;
}

// Finds added tokens leftmost-longest (the Aho-Corasick mode HF uses) and cuts text around them.
class AddedSplitter {
 public:
  void add(const AddedToken* t) { by_first_[static_cast<uint8_t>(t->content[0])].push_back(t); }
  void finish() {
    for (auto& v : by_first_)
      std::stable_sort(v.begin(), v.end(), [](const AddedToken* a, const AddedToken* b) {
        return a->content.size() > b->content.size();
      });
  }
  bool empty() const {
    return std::all_of(by_first_.begin(), by_first_.end(), [](const auto& v) { return v.empty(); });
  }

  // Cuts [begin, end) of text into text pieces and added tokens, appended to *out.
  void split(std::string_view text, size_t begin, size_t end, std::vector<Piece>* out) const {
    size_t pending = begin;  // start of the text not yet given out
    for (size_t i = begin; i < end;) {
      const AddedToken* hit = longest_at(text, i, end);
      if (!hit) {
        ++i;
        continue;
      }
      size_t b = i, e = i + hit->content.size();
      if (hit->lstrip) b = white_space_start(text, b, pending);
      if (hit->rstrip) e = white_space_end(text, e, end);
      if (b > pending) out->push_back(Piece{pending, b, -1});
      out->push_back(Piece{b, e, hit->id});
      pending = i = e;
    }
    if (pending < end) out->push_back(Piece{pending, end, -1});
  }

 private:
  const AddedToken* longest_at(std::string_view text, size_t i, size_t end) const {
    for (const AddedToken* t : by_first_[static_cast<uint8_t>(text[i])])
      if (t->content.size() <= end - i && std::memcmp(text.data() + i, t->content.data(), t->content.size()) == 0)
        return t;  // sorted longest first
    return nullptr;
  }
  std::array<std::vector<const AddedToken*>, 256> by_first_;
};

// ---- tokenizer.json reading: every refusal names the file and the JSON field ----

class JsonFile {
 public:
  explicit JsonFile(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  Error bad(const std::string& field, const std::string& why, const char* fix = kFixFile) const {
    return Error("tokenizer.json '" + path_ + "': " + field + ": " + why, fix);
  }
  Error unsupported(const std::string& field, const std::string& why) const { return bad(field, why, kFixUnsupported); }

  const json& object(const json& parent, const std::string& key, const std::string& field) const {
    auto it = parent.find(key);
    if (it == parent.end() || !it->is_object()) throw bad(field, "missing, or not a JSON object");
    return *it;
  }
  std::string type_of(const json& obj, const std::string& field) const {
    auto it = obj.find("type");
    if (it == obj.end() || !it->is_string()) throw bad(field + ".type", "missing, or not a string");
    return it->get<std::string>();
  }
  // A boolean field; `fallback` when absent or null.
  bool boolean(const json& obj, const std::string& key, const std::string& field, bool fallback) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) throw bad(field, "expected true or false, found " + it->dump());
    return it->get<bool>();
  }

 private:
  std::string path_;
};

std::string shown(const json& v) {
  std::string s = v.dump();
  return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

}  // namespace

struct HfBpeTokenizer::Impl {
  std::vector<std::string> pieces;  // id -> vocabulary entry or added token content ("" for unused ids)
  std::vector<std::string> bytes;   // id -> the bytes it stands for
  std::vector<uint32_t> byte_len;
  std::vector<bool> added;
  std::unordered_map<std::string, int32_t> vocab;        // vocabulary entry -> id (model only)
  std::unordered_map<std::string, int32_t> vocab_bytes;  // its bytes -> id (ignore_merges)
  std::unordered_map<std::string, int32_t> added_ids;    // added token content -> id
  std::array<int32_t, 256> byte_ids{};
  MergeTable merges;
  bool ignore_merges = false;
  bool nfc = false;
  HfSplitPattern pattern = HfSplitPattern::kGpt2;
  std::vector<AddedToken> added_tokens;
  AddedSplitter raw_splitter, normalized_splitter;  // normalized=false / normalized=true tokens
  int32_t eos = -1, bos = -1, config_eos = -1;
  std::string hash;

  static constexpr size_t kShards = 64;
  static constexpr size_t kMaxCachedLen = 128;  // longer pre-tokens are rare: merge them directly
  static constexpr size_t kHeapFrom = 32;       // symbols; below this the simple loop is faster
  mutable std::array<CacheShard, kShards> cache;

  void to_symbols(std::string_view piece, std::vector<int32_t>* out) const {
    out->resize(piece.size());
    for (size_t i = 0; i < piece.size(); ++i) (*out)[i] = byte_ids[static_cast<uint8_t>(piece[i])];
  }

  // Merges the lowest-ranked adjacent pair (leftmost on a tie), one at a time; O(n^2).
  size_t merge_simple(int32_t* sym, size_t n) const {
    while (n > 1) {
      int32_t best = kNoRank, merged = -1;
      size_t at = 0;
      for (size_t i = 0; i + 1 < n; ++i) {
        const MergeTable::Slot* m = merges.find(sym[i], sym[i + 1]);
        if (m && m->rank < best) best = m->rank, merged = m->merged, at = i;
      }
      if (best == kNoRank) break;
      sym[at] = merged;
      std::memmove(sym + at + 1, sym + at + 2, (n - at - 2) * sizeof(int32_t));
      --n;
    }
    return n;
  }

  // The same merges in O(n log n): a heap of (rank, position) over a linked list of symbols; an entry
  // whose pair has changed since it was pushed is skipped when popped.
  size_t merge_heap(int32_t* sym, size_t n) const {
    struct Cand {
      int32_t rank, pos, left, right, merged;
    };
    auto after = [](const Cand& x, const Cand& y) { return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos; };
    std::vector<int32_t> next(n), prev(n);
    for (size_t i = 0; i < n; ++i) {
      next[i] = i + 1 < n ? static_cast<int32_t>(i + 1) : -1;
      prev[i] = static_cast<int32_t>(i) - 1;
    }
    std::vector<Cand> heap;
    heap.reserve(n);
    auto push = [&](int32_t pos) {
      const int32_t q = next[pos];
      if (q < 0) return;
      const MergeTable::Slot* m = merges.find(sym[pos], sym[q]);
      if (!m) return;
      heap.push_back(Cand{m->rank, pos, sym[pos], sym[q], m->merged});
      std::push_heap(heap.begin(), heap.end(), after);
    };
    for (size_t i = 0; i + 1 < n; ++i) push(static_cast<int32_t>(i));
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), after);
      const Cand c = heap.back();
      heap.pop_back();
      const int32_t q = next[c.pos];
      if (sym[c.pos] != c.left || q < 0 || sym[q] != c.right) continue;  // stale
      sym[c.pos] = c.merged;
      sym[q] = -1;
      next[c.pos] = next[q];
      if (next[q] >= 0) prev[next[q]] = c.pos;
      if (prev[c.pos] >= 0) push(prev[c.pos]);
      push(c.pos);
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) sym[k++] = sym[i];  // position 0 is never merged away
    return k;
  }

  void bpe(std::string_view piece, std::vector<int32_t>* out) const {
    if (ignore_merges) {
      auto it = vocab_bytes.find(std::string(piece));
      if (it != vocab_bytes.end()) {
        out->assign(1, it->second);
        return;
      }
    }
    to_symbols(piece, out);
    const size_t n = out->size() >= kHeapFrom ? merge_heap(out->data(), out->size()) : merge_simple(out->data(), out->size());
    out->resize(n);
  }

  void pretoken_ids(std::string_view piece, std::vector<int32_t>* out) const {
    if (piece.size() == 1) {
      out->assign(1, byte_ids[static_cast<uint8_t>(piece[0])]);
      return;
    }
    if (piece.size() > kMaxCachedLen) {
      bpe(piece, out);
      return;
    }
    const uint64_t h = bytes_hash(piece);
    CacheShard& shard = cache[(h >> 40) % kShards];
    if (shard.get(h, piece, out)) return;
    bpe(piece, out);
    shard.put(h, piece, *out);
  }

  // Added tokens first (normalized=false on the raw text, then normalized=true on what is left).
  std::vector<Piece> split_added(std::string_view text) const {
    std::vector<Piece> first, out;
    raw_splitter.split(text, 0, text.size(), &first);
    if (normalized_splitter.empty()) return first;
    for (const Piece& p : first) {
      if (p.id >= 0) out.push_back(p);
      else normalized_splitter.split(text, p.begin, p.end, &out);
    }
    return out;
  }

  // Loading (definitions below): each step reads one part of tokenizer.json.
  void read_model(const json& model, const JsonFile& f);
  void read_vocab(const json& vocab, const JsonFile& f);
  void read_merges(const json& merges, const JsonFile& f);
  void read_normalizer(const json& j, const JsonFile& f);
  void read_pre_tokenizer(const json& j, const JsonFile& f);
  void read_decoder_and_post_processor(const json& j, const JsonFile& f);
  void read_added_tokens(const json& j, const JsonFile& f);
  void read_special_ids(const JsonFile& f);
  void set_id(int32_t id, const std::string& piece, const std::string& token_bytes, bool is_added);

  // Pre-tokenizes and merges `text`; emits ids with spans given by span(begin, end) in text's bytes.
  template <class Emit, class Span>
  void encode_piece(std::string_view text, Emit& emit, Span&& span) const {
    std::vector<int32_t> ids;
    ids.reserve(64);
    for (size_t pos = 0; pos < text.size();) {
      const size_t end = hf_pretoken_end(pattern, text, pos);
      pretoken_ids(text.substr(pos, end - pos), &ids);
      for (const int32_t id : ids) {
        const size_t len = byte_len[id];
        span(emit, id, pos, pos + len);
        pos += len;
      }
    }
  }
};


HfBpeTokenizer::HfBpeTokenizer() : impl_(std::make_unique<Impl>()) {}
HfBpeTokenizer::~HfBpeTokenizer() = default;

// ---- loading ----

void HfBpeTokenizer::Impl::set_id(int32_t id, const std::string& piece, const std::string& token_bytes, bool is_added) {
  if (static_cast<size_t>(id) >= pieces.size()) {
    pieces.resize(id + 1);
    bytes.resize(id + 1);
    byte_len.resize(id + 1, 0);
    added.resize(id + 1, false);
  }
  pieces[id] = piece;
  bytes[id] = token_bytes;
  byte_len[id] = static_cast<uint32_t>(token_bytes.size());
  added[id] = is_added;
}

void HfBpeTokenizer::Impl::read_model(const json& model, const JsonFile& f) {
  const std::string type = f.type_of(model, "model");
  if (type != "BPE") throw f.unsupported("model.type", "\"" + type + "\" is not supported (only \"BPE\")");
  if (f.boolean(model, "byte_fallback", "model.byte_fallback", false))
    throw f.unsupported("model.byte_fallback",
                        "true: a SentencePiece-style BPE, not a byte-level one; load the model folder with "
                        "load_hf_folder_tokenizer, which reads its tokenizer.model");
  auto dropout = model.find("dropout");
  if (dropout != model.end() && !dropout->is_null())
    throw f.unsupported("model.dropout", shown(*dropout) + ": BPE dropout (random merges) is not supported; it must be null");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model.find(key);
    if (it != model.end() && !it->is_null() && !(it->is_string() && it->get<std::string>().empty()))
      throw f.unsupported(std::string("model.") + key, shown(*it) + " is not supported (byte-level files leave it null or \"\")");
  }
  ignore_merges = f.boolean(model, "ignore_merges", "model.ignore_merges", false);
  read_vocab(f.object(model, "vocab", "model.vocab"), f);
  auto m = model.find("merges");
  if (m == model.end() || !m->is_array()) throw f.bad("model.merges", "missing, or not a JSON array");
  read_merges(*m, f);
}

void HfBpeTokenizer::Impl::read_vocab(const json& v, const JsonFile& f) {
  if (v.empty()) throw f.bad("model.vocab", "empty");
  const std::array<uint32_t, 256> cp = byte_level_code_points();
  std::array<int16_t, 0x144> byte_of;
  byte_of.fill(-1);
  for (int b = 0; b < 256; ++b) byte_of[cp[b]] = static_cast<int16_t>(b);
  vocab.reserve(v.size() * 2);
  vocab_bytes.reserve(v.size() * 2);
  std::string b;
  for (auto it = v.begin(); it != v.end(); ++it) {
    const std::string field = "model.vocab[" + json(it.key()).dump() + "]";
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0 ||
        it.value().get<int64_t>() >= std::numeric_limits<int32_t>::max())
      throw f.bad(field, "the id " + shown(it.value()) + " is not an integer in 0..2^31-2");
    const int32_t id = it.value().get<int32_t>();
    if (it.key().empty()) throw f.bad(field, "an empty entry");
    if (!byte_level_to_bytes(it.key(), byte_of, &b))
      throw f.unsupported(field, "holds a character outside the 256 byte-level characters: not a byte-level BPE vocabulary");
    if (static_cast<size_t>(id) < pieces.size() && !pieces[id].empty())
      throw f.bad(field, "id " + std::to_string(id) + " is also the id of " + json(pieces[id]).dump());
    set_id(id, it.key(), b, false);
    vocab.emplace(it.key(), id);
    vocab_bytes.emplace(b, id);
  }
  for (int byte = 0; byte < 256; ++byte) {
    auto it = vocab.find(utf8_of(cp[byte]));
    if (it == vocab.end()) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", byte);
      throw f.bad("model.vocab", std::string("no entry for the byte ") + hex + " (" + json(utf8_of(cp[byte])).dump() +
                                     "): a byte-level vocabulary holds all 256 bytes");
    }
    byte_ids[byte] = it->second;
  }
}

void HfBpeTokenizer::Impl::read_merges(const json& m, const JsonFile& f) {
  merges.reserve(m.size());
  auto id_of = [&](const std::string& s, const std::string& field, const char* what) {
    auto it = vocab.find(s);
    if (it == vocab.end()) throw f.bad(field, std::string(what) + " " + json(s).dump() + " is not in model.vocab");
    return it->second;
  };
  for (size_t i = 0; i < m.size(); ++i) {
    const json& e = m[i];
    const std::string field = "model.merges[" + std::to_string(i) + "]";
    std::string a, b;
    if (e.is_string()) {  // "a b": byte-level symbols never hold a space, so exactly one separates them
      const std::string s = e.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
        throw f.bad(field, shown(e) + ": expected two symbols separated by one space");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string()) {
      a = e[0].get<std::string>();
      b = e[1].get<std::string>();
    } else {
      throw f.bad(field, shown(e) + ": expected \"a b\" or [\"a\", \"b\"]");
    }
    const int32_t ia = id_of(a, field, "the symbol"), ib = id_of(b, field, "the symbol");
    const int32_t merged = id_of(a + b, field, "the merged symbol");
    merges.put(ia, ib, static_cast<int32_t>(i), merged);
  }
}

void HfBpeTokenizer::Impl::read_normalizer(const json& j, const JsonFile& f) {
  auto it = j.find("normalizer");
  if (it == j.end() || it->is_null()) return;
  if (!it->is_object()) throw f.bad("normalizer", "expected null or a JSON object");
  const std::string type = f.type_of(*it, "normalizer");
  if (type != "NFC") throw f.unsupported("normalizer.type", "\"" + type + "\" is not supported (only null or NFC)");
  nfc = true;
}

void HfBpeTokenizer::Impl::read_pre_tokenizer(const json& j, const JsonFile& f) {
  auto it = j.find("pre_tokenizer");
  if (it == j.end() || it->is_null() || !it->is_object())
    throw f.unsupported("pre_tokenizer", "missing or null: a byte-level BPE has a ByteLevel pre-tokenizer");
  const json& pt = *it;
  // ByteLevel's own GPT-2 split (use_regex) is wanted alone, and not after a Split, which already did it.
  auto byte_level = [&](const json& bl, const std::string& field, bool want_regex) {
    const std::string type = f.type_of(bl, field);
    if (type != "ByteLevel") throw f.unsupported(field + ".type", "\"" + type + "\" where ByteLevel was expected");
    if (f.boolean(bl, "add_prefix_space", field + ".add_prefix_space", true))
      throw f.unsupported(field + ".add_prefix_space", "true (a space put before the text) is not supported; it must be false");
    if (f.boolean(bl, "use_regex", field + ".use_regex", true) != want_regex)
      throw f.unsupported(field + ".use_regex", want_regex ? "false: a ByteLevel pre-tokenizer alone must split (use_regex true)"
                                                           : "true after a Split is not supported (it would split twice)");
  };
  const std::string type = f.type_of(pt, "pre_tokenizer");
  if (type == "ByteLevel") {
    byte_level(pt, "pre_tokenizer", true);
    pattern = HfSplitPattern::kGpt2;
    return;
  }
  if (type != "Sequence")
    throw f.unsupported("pre_tokenizer.type", "\"" + type + "\" is not supported (only ByteLevel, or Sequence[Split, ByteLevel])");
  auto list = pt.find("pretokenizers");
  if (list == pt.end() || !list->is_array() || list->size() != 2 || !(*list)[0].is_object() || !(*list)[1].is_object())
    throw f.unsupported("pre_tokenizer.pretokenizers", "expected exactly [Split, ByteLevel]");
  const json& split = (*list)[0];
  const std::string field = "pre_tokenizer.pretokenizers[0]";
  const std::string split_type = f.type_of(split, field);
  if (split_type != "Split") throw f.unsupported(field + ".type", "\"" + split_type + "\" where Split was expected");
  auto pat = split.find("pattern");
  if (pat == split.end() || !pat->is_object()) throw f.bad(field + ".pattern", "missing, or not a JSON object");
  auto regex = pat->find("Regex");
  if (regex == pat->end() || !regex->is_string())
    throw f.unsupported(field + ".pattern", shown(*pat) + " is not supported (only the Regex patterns of GPT-2, Llama-3 and Qwen2)");
  if (!hf_split_pattern(regex->get<std::string>(), &pattern))
    throw f.unsupported(field + ".pattern.Regex", "unknown split pattern " + shown(*regex) +
                                                      " (known: the GPT-2, Llama-3 and Qwen2 patterns, see hf_pretokenizer.h)");
  auto behavior = split.find("behavior");
  if (behavior == split.end() || *behavior != "Isolated")
    throw f.unsupported(field + ".behavior", (behavior == split.end() ? std::string("missing") : shown(*behavior)) +
                                                 " is not supported (only \"Isolated\")");
  if (f.boolean(split, "invert", field + ".invert", false)) throw f.unsupported(field + ".invert", "true is not supported");
  byte_level((*list)[1], "pre_tokenizer.pretokenizers[1]", false);
}

void HfBpeTokenizer::Impl::read_decoder_and_post_processor(const json& j, const JsonFile& f) {
  auto dec = j.find("decoder");
  if (dec == j.end() || !dec->is_object() || f.type_of(*dec, "decoder") != "ByteLevel")
    throw f.unsupported("decoder", (dec == j.end() ? std::string("missing") : shown(*dec)) + " is not supported (only ByteLevel)");
  // encode() adds no special tokens, so a post-processor changes nothing; unknown kinds are refused
  // all the same, as a sign of a tokenizer this reader was not written for.
  auto known = [](const json& p) {
    return p.is_object() && p.contains("type") && (p["type"] == "ByteLevel" || p["type"] == "TemplateProcessing");
  };
  auto post = j.find("post_processor");
  if (post == j.end() || post->is_null() || known(*post)) return;
  if (post->is_object() && post->value("type", json()) == "Sequence" && post->contains("processors") &&
      (*post)["processors"].is_array() && std::all_of((*post)["processors"].begin(), (*post)["processors"].end(), known))
    return;
  throw f.unsupported("post_processor", shown(*post) + " is not supported (only null, ByteLevel, TemplateProcessing or a Sequence of them)");
}

void HfBpeTokenizer::Impl::read_added_tokens(const json& j, const JsonFile& f) {
  auto list = j.find("added_tokens");
  if (list == j.end() || list->is_null()) return;
  if (!list->is_array()) throw f.bad("added_tokens", "expected a JSON array");
  added_tokens.reserve(list->size());  // the splitters keep pointers into it: no reallocation after this
  for (size_t i = 0; i < list->size(); ++i) {
    const json& e = (*list)[i];
    const std::string field = "added_tokens[" + std::to_string(i) + "]";
    if (!e.is_object()) throw f.bad(field, "expected a JSON object");
    AddedToken t;
    auto id = e.find("id");
    auto content = e.find("content");
    if (id == e.end() || !id->is_number_integer() || id->get<int64_t>() < 0 ||
        id->get<int64_t>() >= std::numeric_limits<int32_t>::max())
      throw f.bad(field + ".id", "missing, or not an integer in 0..2^31-2");
    if (content == e.end() || !content->is_string() || content->get<std::string>().empty())
      throw f.bad(field + ".content", "missing, or not a non-empty string");
    t.id = id->get<int32_t>();
    t.content = content->get<std::string>();
    t.special = f.boolean(e, "special", field + ".special", false);
    t.normalized = f.boolean(e, "normalized", field + ".normalized", !t.special);  // HF's default for a new token
    t.lstrip = f.boolean(e, "lstrip", field + ".lstrip", false);
    t.rstrip = f.boolean(e, "rstrip", field + ".rstrip", false);
    if (f.boolean(e, "single_word", field + ".single_word", false))
      throw f.unsupported(field + ".single_word", "true is not supported (" + json(t.content).dump() + ")");
    if (t.normalized && nfc)
      throw f.unsupported(field + ".normalized",
                          "true together with the NFC normalizer is not supported (" + json(t.content).dump() + ")");
    const bool taken = static_cast<size_t>(t.id) < pieces.size() && (added[t.id] || !pieces[t.id].empty());
    if (taken && added[t.id]) throw f.bad(field + ".id", std::to_string(t.id) + " belongs to another added token");
    if (taken && pieces[t.id] != t.content)
      throw f.bad(field + ".id", std::to_string(t.id) + " is the vocabulary entry " + json(pieces[t.id]).dump() + ", not " +
                                     json(t.content).dump());
    if (added_ids.count(t.content)) throw f.bad(field + ".content", json(t.content).dump() + " is listed twice");
    set_id(t.id, t.content, t.content, true);
    added_ids.emplace(t.content, t.id);
    added_tokens.push_back(std::move(t));
  }
  for (const AddedToken& t : added_tokens) (t.normalized ? normalized_splitter : raw_splitter).add(&t);
  raw_splitter.finish();
  normalized_splitter.finish();
}

namespace {

// tokenizer_config.json's bos_token / eos_token: a string, {"content": "..."} or null. "" when absent.
std::string config_token(const json& cfg, const char* key, const std::string& path) {
  auto it = cfg.find(key);
  if (it == cfg.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"].get<std::string>();
  throw Error("tokenizer_config.json '" + path + "': " + key + ": expected a string or {\"content\": ...}, found " + shown(*it),
              kFixFile);
}

}  // namespace

void HfBpeTokenizer::Impl::read_special_ids(const JsonFile& f) {
  const std::string cfg_path = join_path(parent_dir(f.path()), "tokenizer_config.json");
  std::string bos_name, eos_name;
  if (file_exists(cfg_path)) {
    json cfg;
    try {
      cfg = json::parse(read_file(cfg_path));
    } catch (const json::exception& e) {
      throw Error("tokenizer_config.json '" + cfg_path + "' is not valid JSON (" + e.what() + ")", kFixFile);
    }
    if (!cfg.is_object()) throw Error("tokenizer_config.json '" + cfg_path + "': expected a JSON object", kFixFile);
    bos_name = config_token(cfg, "bos_token", cfg_path);
    eos_name = config_token(cfg, "eos_token", cfg_path);
  }
  auto id_of_name = [&](const std::string& name, const char* key) {
    if (name.empty()) return -1;
    auto a = added_ids.find(name);
    if (a != added_ids.end()) return a->second;
    auto v = vocab.find(name);
    if (v != vocab.end()) return v->second;
    throw Error("tokenizer_config.json '" + cfg_path + "': " + key + " " + json(name).dump() + " is not a token of '" +
                    f.path() + "'",
                "use the tokenizer_config.json that ships with this tokenizer.json");
  };
  bos = id_of_name(bos_name, "bos_token");
  config_eos = id_of_name(eos_name, "eos_token");
  for (const char* name : {"<|end_of_text|>", "<|endoftext|>"}) {  // end of a pretraining document
    for (const AddedToken& t : added_tokens)
      if (t.special && t.content == name) eos = t.id;
    if (eos >= 0) break;
  }
  if (eos < 0) eos = config_eos;
  if (eos < 0)
    throw Error("tokenizer.json '" + f.path() + "' has no end-of-text token: no \"<|end_of_text|>\" or \"<|endoftext|>\" "
                "added token, and no eos_token in '" + cfg_path + "'",
                "put the model's tokenizer_config.json (with its eos_token) next to tokenizer.json");
}

std::unique_ptr<HfBpeTokenizer> HfBpeTokenizer::load(const std::string& tokenizer_json_path) {
  if (!file_exists(tokenizer_json_path))
    throw Error("tokenizer.json '" + tokenizer_json_path + "' does not exist",
                "point at the tokenizer.json of the model's Hugging Face folder");
  const std::string text = read_file(tokenizer_json_path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error("tokenizer.json '" + tokenizer_json_path + "' is not valid JSON (" + e.what() + ")", kFixFile);
  }
  return from_json(j, text, tokenizer_json_path);
}

std::unique_ptr<HfBpeTokenizer> HfBpeTokenizer::from_json(const json& j, std::string_view json_text, const std::string& path) {
  const JsonFile f(path);
  if (!j.is_object()) throw f.bad("(top level)", "expected a JSON object");
  std::unique_ptr<HfBpeTokenizer> tok(new HfBpeTokenizer());
  Impl& im = *tok->impl_;
  im.read_normalizer(j, f);
  im.read_model(f.object(j, "model", "model"), f);
  im.read_pre_tokenizer(j, f);
  im.read_decoder_and_post_processor(j, f);
  im.read_added_tokens(j, f);
  im.read_special_ids(f);
  im.hash = sha256_hex(json_text);
  return tok;
}

// ---- encoding ----

template <class Emit>
void HfBpeTokenizer::encode_impl(std::string_view text, Emit&& emit) const {
  if (text.size() > std::numeric_limits<uint32_t>::max())
    throw Error("hf-bpe: text of " + std::to_string(text.size()) + " bytes is too long (byte offsets are 32-bit)",
                "encode documents one at a time");
  const Impl& im = *impl_;
  std::string normalized;
  std::vector<uint32_t> source_of;
  for (const Piece& p : im.split_added(text)) {
    if (p.id >= 0) {
      emit(p.id, static_cast<uint32_t>(p.begin), static_cast<uint32_t>(p.end));
      continue;
    }
    const std::string_view part = text.substr(p.begin, p.end - p.begin);
    const auto base = static_cast<uint32_t>(p.begin);
    if (im.nfc && nfc_with_offsets(part, &normalized, &source_of)) {
      im.encode_piece(normalized, emit, [&](auto& e, int32_t id, size_t b, size_t en) {
        e(id, base + source_of[b], base + source_of[en]);
      });
    } else {
      im.encode_piece(part, emit, [&](auto& e, int32_t id, size_t b, size_t en) {
        e(id, base + static_cast<uint32_t>(b), base + static_cast<uint32_t>(en));
      });
    }
  }
}

std::vector<TokenSpan> HfBpeTokenizer::encode(std::string_view text) const {
  std::vector<TokenSpan> out;
  out.reserve(text.size() / 4 + 8);
  encode_impl(text, [&](int32_t id, uint32_t b, uint32_t e) { out.push_back(TokenSpan{id, b, e}); });
  return out;
}

std::vector<int32_t> HfBpeTokenizer::encode_ids(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 4 + 8);
  encode_impl(text, [&](int32_t id, uint32_t, uint32_t) { out.push_back(id); });
  return out;
}

std::vector<int32_t> HfBpeTokenizer::bpe_uncached(std::string_view pretoken) const {
  std::vector<int32_t> out;
  impl_->bpe(pretoken, &out);
  return out;
}

std::vector<int32_t> HfBpeTokenizer::bpe_simple(std::string_view pretoken) const {
  std::vector<int32_t> out;
  impl_->to_symbols(pretoken, &out);
  out.resize(impl_->merge_simple(out.data(), out.size()));
  return out;
}

std::vector<int32_t> HfBpeTokenizer::bpe_heap(std::string_view pretoken) const {
  std::vector<int32_t> out;
  impl_->to_symbols(pretoken, &out);
  if (!out.empty()) out.resize(impl_->merge_heap(out.data(), out.size()));
  return out;
}

void HfBpeTokenizer::clear_cache() const {
  for (auto& shard : impl_->cache) shard.clear();
}

// ---- vocabulary ----

const std::string& HfBpeTokenizer::token_bytes(int32_t id) const {
  if (id < 0 || id >= vocab_size())
    throw Error("hf-bpe: token id " + std::to_string(id) + " is outside 0.." + std::to_string(vocab_size() - 1),
                "the ids do not come from this tokenizer");
  return impl_->bytes[id];
}

std::string HfBpeTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (const int32_t id : ids) out += token_bytes(id);
  return out;
}

std::string HfBpeTokenizer::continuation_bytes(int32_t id) const { return token_bytes(id); }

std::string HfBpeTokenizer::piece(int32_t id) const {
  token_bytes(id);  // range check
  return impl_->pieces[id];
}

int32_t HfBpeTokenizer::piece_to_id(const std::string& piece) const {
  auto v = impl_->vocab.find(piece);
  if (v != impl_->vocab.end()) return v->second;
  auto a = impl_->added_ids.find(piece);
  return a == impl_->added_ids.end() ? -1 : a->second;
}

bool HfBpeTokenizer::is_added(int32_t id) const {
  token_bytes(id);
  return impl_->added[id];
}

int32_t HfBpeTokenizer::vocab_size() const { return static_cast<int32_t>(impl_->pieces.size()); }
int32_t HfBpeTokenizer::eos_id() const { return impl_->eos; }
int32_t HfBpeTokenizer::bos_id() const { return impl_->bos; }
int32_t HfBpeTokenizer::config_eos_id() const { return impl_->config_eos; }
std::string HfBpeTokenizer::hash() const { return impl_->hash; }

}  // namespace bkd

#include "core/tokenizer/nfc_offsets.h"

#include <utf8proc.h>

#include <cstring>

#include "core/tokenizer/hf_pretokenizer.h"

namespace bkd {
namespace {

constexpr int kNfcOptions = UTF8PROC_STABLE | UTF8PROC_COMPOSE;

// Code points that can combine with what precedes them in a composition: every code point after the
// first of a canonical decomposition (a superset of the second halves of primary composites, which
// is all this needs), plus the Hangul vowel and trailing jamo (composed by rule, not by table).
class BackwardComposers {
 public:
  BackwardComposers() : bits_(0x110000, false) {
    utf8proc_int32_t buf[32];
    for (utf8proc_int32_t cp = 0x80; cp < 0x110000; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      const utf8proc_property_t* p = utf8proc_get_property(cp);
      if (p->decomp_seqindex == UINT16_MAX || p->decomp_type != 0) continue;  // none, or compatibility only
      int boundclass = 0;
      const utf8proc_ssize_t n = utf8proc_decompose_char(cp, buf, 32, UTF8PROC_DECOMPOSE, &boundclass);
      for (utf8proc_ssize_t i = 1; i < n && i < 32; ++i) bits_[buf[i]] = true;
    }
    for (uint32_t cp = 0x1161; cp <= 0x1175; ++cp) bits_[cp] = true;
    for (uint32_t cp = 0x11A8; cp <= 0x11C2; ++cp) bits_[cp] = true;
  }
  bool operator()(uint32_t cp) const { return bits_[cp]; }

 private:
  std::vector<bool> bits_;
};

const BackwardComposers& backward_composers() {
  static const BackwardComposers table;  // built once (a few ms), then read-only
  return table;
}

// True when no code point before cp can combine or reorder with it or with what follows it.
bool starts_chunk(uint32_t cp) {
  if (cp < 0x80) return true;
  utf8proc_int32_t first = static_cast<utf8proc_int32_t>(cp);
  const utf8proc_property_t* p = utf8proc_get_property(first);
  if (p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0) {
    utf8proc_int32_t buf[32];
    int boundclass = 0;
    if (utf8proc_decompose_char(first, buf, 32, UTF8PROC_DECOMPOSE, &boundclass) >= 1) first = buf[0];
  }
  return utf8proc_get_property(first)->combining_class == 0 && !backward_composers()(static_cast<uint32_t>(first));
}

bool has_canonical_decomposition(uint32_t cp) {
  const utf8proc_property_t* p = utf8proc_get_property(static_cast<utf8proc_int32_t>(cp));
  return p->decomp_seqindex != UINT16_MAX && p->decomp_type == 0;
}

// NFC of one chunk (valid UTF-8), written into *buf's storage; returns its bytes.
std::string_view nfc_chunk(std::string_view chunk, std::vector<utf8proc_int32_t>* buf) {
  const auto* s = reinterpret_cast<const utf8proc_uint8_t*>(chunk.data());
  if (buf->size() < chunk.size() * 4 + 16) buf->resize(chunk.size() * 4 + 16);
  utf8proc_ssize_t n = utf8proc_decompose(s, static_cast<utf8proc_ssize_t>(chunk.size()), buf->data(),
                                          static_cast<utf8proc_ssize_t>(buf->size()), static_cast<utf8proc_option_t>(kNfcOptions));
  if (n > static_cast<utf8proc_ssize_t>(buf->size())) {
    buf->resize(static_cast<size_t>(n));
    n = utf8proc_decompose(s, static_cast<utf8proc_ssize_t>(chunk.size()), buf->data(), n,
                           static_cast<utf8proc_option_t>(kNfcOptions));
  }
  if (n < 0) return chunk;  // cannot happen on valid UTF-8; keep the text as it is
  const utf8proc_ssize_t bytes = utf8proc_reencode(buf->data(), n, static_cast<utf8proc_option_t>(kNfcOptions));
  if (bytes < 0) return chunk;
  return std::string_view(reinterpret_cast<const char*>(buf->data()), static_cast<size_t>(bytes));
}

bool all_ascii(std::string_view s) {
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    if (w & 0x8080808080808080ull) return false;
  }
  for (; i < s.size(); ++i)
    if (static_cast<uint8_t>(s[i]) >= 0x80) return false;
  return true;
}

// Builds the normalized text and its offset map once the first changed chunk shows up.
class Writer {
 public:
  Writer(std::string_view src, std::string* out, std::vector<uint32_t>* source_of)
      : src_(src), out_(out), map_(source_of) {}
  bool changed() const { return changed_; }
  void keep(size_t begin, size_t end) {
    if (!changed_) return;
    out_->append(src_.data() + begin, end - begin);
    for (size_t i = begin; i < end; ++i) map_->push_back(static_cast<uint32_t>(i));
  }
  void replace(size_t begin, size_t end, std::string_view normalized) {
    if (!changed_) start(begin);
    out_->append(normalized.data(), normalized.size());
    for (size_t i = 0; i < normalized.size(); ++i) map_->push_back(static_cast<uint32_t>(i == 0 ? begin : end));
  }
  void finish() {
    if (changed_) map_->push_back(static_cast<uint32_t>(src_.size()));
  }

 private:
  void start(size_t upto) {
    changed_ = true;
    out_->assign(src_.data(), upto);
    map_->clear();
    map_->reserve(src_.size() + 16);
    for (size_t i = 0; i < upto; ++i) map_->push_back(static_cast<uint32_t>(i));
  }
  std::string_view src_;
  std::string* out_;
  std::vector<uint32_t>* map_;
  bool changed_ = false;
};

}  // namespace

bool nfc_with_offsets(std::string_view src, std::string* out, std::vector<uint32_t>* source_of) {
  if (all_ascii(src)) return false;
  const auto* s = reinterpret_cast<const uint8_t*>(src.data());
  const size_t n = src.size();
  Writer w(src, out, source_of);
  std::vector<utf8proc_int32_t> buf;
  for (size_t pos = 0; pos < n;) {
    uint32_t cp = 0;
    const int len = hf_decode_utf8(s + pos, n - pos, &cp);
    if (len == 0) {  // not UTF-8: a chunk of its own, kept
      w.keep(pos, pos + 1);
      ++pos;
      continue;
    }
    size_t end = pos + len, cps = 1;
    for (uint32_t next = 0; end < n; ++cps) {
      const int l = hf_decode_utf8(s + end, n - end, &next);
      if (l == 0 || starts_chunk(next)) break;
      end += l;
    }
    // A lone code point without a canonical decomposition is already NFC (Hangul syllables too).
    if (cps == 1 && (cp < 0x80 || !has_canonical_decomposition(cp))) {
      w.keep(pos, end);
    } else {
      const std::string_view chunk(src.data() + pos, end - pos);
      const std::string_view normalized = nfc_chunk(chunk, &buf);
      if (normalized == chunk) w.keep(pos, end);
      else w.replace(pos, end, normalized);
    }
    pos = end;
  }
  w.finish();
  return w.changed();
}

std::string nfc(std::string_view src) {
  std::string out;
  std::vector<uint32_t> map;
  return nfc_with_offsets(src, &out, &map) ? out : std::string(src);
}

}  // namespace bkd

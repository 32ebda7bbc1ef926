#include "core/parquet/thrift_compact.h"

#include <cstring>

#include "core/util/error.h"

namespace bkd::parquet {

namespace {
constexpr int kMaxDepth = 32;  // Parquet metadata nests a handful of levels; deeper means garbage
}

void put_uvarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void CompactWriter::field_header(int16_t id, uint8_t type) {
  int16_t& last = last_ids_.back();
  int delta = id - last;
  if (delta > 0 && delta <= 15) {
    out_.push_back(static_cast<char>((delta << 4) | type));
  } else {
    out_.push_back(static_cast<char>(type));
    put_uvarint(out_, zigzag(id));
  }
  last = id;
}

void CompactWriter::field_i32(int16_t id, int32_t v) {
  field_header(id, ttype::kI32);
  put_uvarint(out_, zigzag(v));
}
void CompactWriter::field_i64(int16_t id, int64_t v) {
  field_header(id, ttype::kI64);
  put_uvarint(out_, zigzag(v));
}
void CompactWriter::field_bool(int16_t id, bool v) { field_header(id, v ? ttype::kTrue : ttype::kFalse); }
void CompactWriter::field_binary(int16_t id, std::string_view v) {
  field_header(id, ttype::kBinary);
  elem_binary(v);
}
void CompactWriter::elem_binary(std::string_view v) {
  put_uvarint(out_, v.size());
  out_.append(v.data(), v.size());
}
void CompactWriter::field_struct_begin(int16_t id) {
  field_header(id, ttype::kStruct);
  last_ids_.push_back(0);
}
void CompactWriter::field_list_begin(int16_t id, uint8_t elem_type, size_t n) {
  field_header(id, ttype::kList);
  if (n < 15) {
    out_.push_back(static_cast<char>((n << 4) | elem_type));
  } else {
    out_.push_back(static_cast<char>(0xf0 | elem_type));
    put_uvarint(out_, n);
  }
}
void CompactWriter::struct_begin() { last_ids_.push_back(0); }
void CompactWriter::struct_end() {
  out_.push_back(static_cast<char>(ttype::kStop));
  if (last_ids_.size() > 1) last_ids_.pop_back();
}

void CompactReader::fail(const std::string& what) const {
  throw Error(where_ + ": " + what + " (at byte " + std::to_string(p_ - begin_) + " of " +
                  std::to_string(end_ - begin_) + ")",
              "the file is damaged or not a Parquet file; re-create it");
}

uint8_t CompactReader::byte() {
  if (p_ >= end_) fail("thrift data ends early");
  return *p_++;
}

uint64_t CompactReader::uvarint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    uint8_t b = byte();
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  fail("varint longer than 10 bytes");
}

int64_t CompactReader::read_int(uint8_t type) {
  switch (type) {
    case ttype::kByte: return static_cast<int8_t>(byte());
    case ttype::kI16:
    case ttype::kI32:
    case ttype::kI64: return unzigzag(uvarint());
    default: fail("expected an integer, found thrift type " + std::to_string(type));
  }
}

int32_t CompactReader::read_i32(uint8_t type) {
  int64_t v = read_int(type);
  if (v < INT32_MIN || v > INT32_MAX) fail("i32 value out of range");
  return static_cast<int32_t>(v);
}

bool CompactReader::read_bool(uint8_t type) {
  if (type == ttype::kTrue) return true;
  if (type == ttype::kFalse) return false;
  fail("expected a bool, found thrift type " + std::to_string(type));
}

std::string CompactReader::read_binary(uint8_t type) {
  if (type != ttype::kBinary) fail("expected binary, found thrift type " + std::to_string(type));
  uint64_t n = uvarint();
  if (n > static_cast<uint64_t>(end_ - p_)) fail("binary length " + std::to_string(n) + " runs past the end");
  std::string s(reinterpret_cast<const char*>(p_), n);
  p_ += n;
  return s;
}

size_t CompactReader::read_list_header(uint8_t type, uint8_t* elem_type) {
  if (type != ttype::kList && type != ttype::kSet) fail("expected a list, found thrift type " + std::to_string(type));
  uint8_t h = byte();
  *elem_type = h & 0x0f;
  uint64_t n = h >> 4;
  if (n == 15) n = uvarint();
  // Every element takes at least one byte except bools in some writers; this bounds loops and allocations.
  if (n > static_cast<uint64_t>(end_ - p_)) fail("list of " + std::to_string(n) + " elements is longer than the data");
  return static_cast<size_t>(n);
}

void CompactReader::read_struct(const std::function<bool(int16_t, uint8_t)>& on_field) {
  if (++depth_ > kMaxDepth) fail("thrift structs nested too deeply");
  int16_t last = 0;
  for (;;) {
    uint8_t h = byte();
    if (h == ttype::kStop) break;
    uint8_t type = h & 0x0f;
    int delta = h >> 4;
    int64_t id = delta ? last + delta : unzigzag(uvarint());
    if (id < INT16_MIN || id > INT16_MAX) fail("field id out of range");
    if (type == ttype::kStop || type > ttype::kStruct) fail("bad thrift field type " + std::to_string(type));
    last = static_cast<int16_t>(id);
    if (!on_field(last, type)) skip(type);
  }
  --depth_;
}

void CompactReader::skip(uint8_t type, int depth) {
  if (depth > kMaxDepth) fail("thrift values nested too deeply");
  switch (type) {
    case ttype::kTrue:
    case ttype::kFalse: return;
    case ttype::kByte: byte(); return;
    case ttype::kI16:
    case ttype::kI32:
    case ttype::kI64: uvarint(); return;
    case ttype::kDouble:
      if (end_ - p_ < 8) fail("double runs past the end");
      p_ += 8;
      return;
    case ttype::kBinary: read_binary(type); return;
    case ttype::kList:
    case ttype::kSet: {
      uint8_t et;
      size_t n = read_list_header(type, &et);
      for (size_t i = 0; i < n; ++i) {
        if (et == ttype::kTrue || et == ttype::kFalse) byte();  // bool elements are one byte
        else skip(et, depth + 1);
      }
      return;
    }
    case ttype::kMap: {
      uint64_t n = uvarint();
      if (n == 0) return;
      if (n > static_cast<uint64_t>(end_ - p_)) fail("map longer than the data");
      uint8_t kv = byte();
      for (uint64_t i = 0; i < n; ++i) {
        for (uint8_t t : {static_cast<uint8_t>(kv >> 4), static_cast<uint8_t>(kv & 0x0f)}) {
          if (t == ttype::kTrue || t == ttype::kFalse) byte();
          else skip(t, depth + 1);
        }
      }
      return;
    }
    case ttype::kStruct:
      if (depth_ + depth > kMaxDepth) fail("thrift structs nested too deeply");
      read_struct([](int16_t, uint8_t) { return false; });
      return;
    default: fail("bad thrift type " + std::to_string(type));
  }
}

}  // namespace bkd::parquet

#pragma once
// Thrift compact protocol, just what a Parquet footer and page headers need: a writer that appends to a
// string and a reader over a bounded byte range that checks every length before using it.
// Wire facts (thrift-compact-protocol.md): zigzag varints for i16/i32/i64, field headers carry the id
// delta in the high nibble when it is 1..15, bools live in the field type nibble (1 true, 2 false).
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace bkd::parquet {

namespace ttype {
constexpr uint8_t kStop = 0, kTrue = 1, kFalse = 2, kByte = 3, kI16 = 4, kI32 = 5, kI64 = 6, kDouble = 7,
                  kBinary = 8, kList = 9, kSet = 10, kMap = 11, kStruct = 12;
}

void put_uvarint(std::string& out, uint64_t v);
inline uint64_t zigzag(int64_t v) { return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63); }
inline int64_t unzigzag(uint64_t v) { return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1); }

class CompactWriter {
 public:
  explicit CompactWriter(std::string& out) : out_(out) {}
  // Fields of the current struct (ids must increase within a struct).
  void field_i32(int16_t id, int32_t v);
  void field_i64(int16_t id, int64_t v);
  void field_bool(int16_t id, bool v);
  void field_binary(int16_t id, std::string_view v);
  void field_struct_begin(int16_t id);  // then the struct's fields, then struct_end()
  void field_list_begin(int16_t id, uint8_t elem_type, size_t n);
  void struct_begin();  // a struct that is a list element
  void struct_end();    // writes STOP and returns to the enclosing struct
  // List elements.
  void elem_i32(int32_t v) { put_uvarint(out_, zigzag(v)); }
  void elem_binary(std::string_view v);

 private:
  void field_header(int16_t id, uint8_t type);
  std::string& out_;
  std::vector<int16_t> last_ids_{0};
};

// Reads a compact-protocol struct from [data, data+size). Errors throw bkd::Error prefixed by `where`.
class CompactReader {
 public:
  CompactReader(const uint8_t* data, size_t size, std::string where)
      : p_(data), begin_(data), end_(data + size), where_(std::move(where)) {}
  // Walks the fields of a struct; `on_field(id, type)` returns false for fields it does not read,
  // which are then skipped. Nested structs call read_struct again from inside the callback.
  void read_struct(const std::function<bool(int16_t id, uint8_t type)>& on_field);
  int64_t read_int(uint8_t type);  // i8/i16/i32/i64 field or element of that type
  int32_t read_i32(uint8_t type);  // read_int + range check
  bool read_bool(uint8_t type);    // a bool field: the value is in the type nibble
  std::string read_binary(uint8_t type);
  size_t read_list_header(uint8_t type, uint8_t* elem_type);  // checks the count against bytes left
  void skip(uint8_t type, int depth = 0);
  size_t consumed() const { return static_cast<size_t>(p_ - begin_); }
  [[noreturn]] void fail(const std::string& what) const;

 private:
  uint64_t uvarint();
  uint8_t byte();
  const uint8_t* p_;
  const uint8_t* begin_;
  const uint8_t* end_;
  std::string where_;
  int depth_ = 0;
};

}  // namespace bkd::parquet

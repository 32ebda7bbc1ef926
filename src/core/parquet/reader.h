#pragma once
// Parquet reader for flat and list columns (ours and other writers': PLAIN, dictionary, RLE booleans,
// BYTE_STREAM_SPLIT, DELTA_BINARY_PACKED; DATA_PAGE and DATA_PAGE_V2; ZSTD, SNAPPY, uncompressed).
// The file is memory-mapped and read one row group at a time; one reader serves one thread. Every offset, size and count is checked
// before use; any inconsistency throws bkd::Error naming the file, row group, column and problem.
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/parquet/parquet_format.h"
#include "core/parquet/schema.h"

namespace bkd {
class MappedFile;
}

namespace bkd::parquet {

// One top-level column's values for the rows of a row group.
struct ColumnData {
  ColumnSpec spec;
  size_t rows = 0;
  std::vector<uint8_t> values;       // present values, raw little-endian (bools: one byte each)
  std::vector<uint8_t> valid;        // per row, 0 = null; empty when the column has no nulls
  std::vector<int64_t> offsets;      // list columns: rows + 1 offsets into the elements
  std::vector<uint8_t> elem_valid;   // list columns: per element, 0 = null; empty when none is null
  // Flat columns without nulls and list columns without null elements index values directly;
  // otherwise values hold only the present ones, in order.
  size_t value_count() const { return spec.type == Type::BOOLEAN ? values.size() : values.size() / value_width(spec.type); }
  template <class T>
  const T* data() const { return reinterpret_cast<const T*>(values.data()); }
};

struct RowGroupData {
  int64_t rows = 0;
  std::vector<ColumnData> columns;  // in schema order
};

// Hard limits that keep a damaged file from asking for absurd memory.
struct ReaderLimits {
  int64_t max_page_bytes = 256ll << 20;
  int64_t max_values_per_page = 64ll << 20;
  int64_t max_values_per_chunk = 1ll << 31;
};

class ParquetReader {
 public:
  explicit ParquetReader(const std::string& path, ReaderLimits limits = {});
  // Reads from memory (tests and the fuzzer); `name` stands in for the path in messages.
  ParquetReader(const uint8_t* data, size_t size, std::string name, ReaderLimits limits = {});
  ~ParquetReader();

  const std::string& path() const { return path_; }
  const FileMetaData& metadata() const { return meta_; }
  const std::vector<LeafLayout>& columns() const { return leaves_; }
  int column_index(const std::string& name) const;  // -1 if absent
  std::optional<std::string> metadata_value(const std::string& key) const;
  int num_row_groups() const { return static_cast<int>(meta_.row_groups.size()); }
  int64_t num_rows() const { return meta_.num_rows; }
  uint64_t file_size() const { return size_; }

  // Decodes row group `rg`; `wanted` (column indices) restricts which columns are decoded (others are
  // left empty, rows = 0). Reuses `out`'s buffers.
  void read_row_group(int rg, RowGroupData& out, const std::vector<int>* wanted = nullptr) const;

 private:
  struct Scratch;  // decode buffers reused across column chunks (so a reader is not thread-safe)
  void open();
  void read_column(int rg, int col, ColumnData& out) const;
  [[noreturn]] void fail(const std::string& what) const;

  std::string path_;
  std::unique_ptr<MappedFile> map_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  ReaderLimits limits_;
  FileMetaData meta_;
  std::vector<LeafLayout> leaves_;
  int64_t footer_start_ = 0;
  std::unique_ptr<Scratch> scratch_;
};

}  // namespace bkd::parquet

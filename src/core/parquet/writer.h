#pragma once
// Streaming Parquet writer: rows are buffered column by column and flushed as a row group every
// `row_group_rows` rows, so memory stays bounded whatever the file size. The file is written under a
// temporary name and renamed on close(); a writer destroyed without close() removes its temp file.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/parquet/compression.h"
#include "core/parquet/parquet_format.h"
#include "core/parquet/schema.h"

namespace bkd::parquet {

struct WriterOptions {
  Codec codec = Codec::ZSTD;
  int zstd_level = 3;
  int64_t row_group_rows = 65536;
  size_t page_bytes = 1 << 20;     // target uncompressed values per data page
  bool dictionary = true;          // dictionary-encode a column chunk when that is smaller
  bool byte_stream_split = false;  // FLOAT/DOUBLE columns without a dictionary use BYTE_STREAM_SPLIT
  std::vector<KeyValue> metadata;  // file key-value metadata
  std::string created_by = "bitnet-kde parquet writer";
};

class ParquetWriter {
 public:
  ParquetWriter(std::string path, std::vector<ColumnSpec> columns, WriterOptions options = {});
  ~ParquetWriter();
  ParquetWriter(const ParquetWriter&) = delete;
  ParquetWriter& operator=(const ParquetWriter&) = delete;

  // Per row: give every column exactly one value (or null, or list), then end_row().
  void put_bool(int col, bool v);
  void put_i32(int col, int32_t v);
  void put_i64(int col, int64_t v);
  void put_f32(int col, float v);
  void put_f64(int col, double v);
  void put_null(int col);  // nullable columns only
  void put_list_i32(int col, const int32_t* v, size_t n);
  void put_list_i64(int col, const int64_t* v, size_t n);
  void put_list_f32(int col, const float* v, size_t n);
  void put_list_f64(int col, const double* v, size_t n);
  void end_row();

  void set_metadata(const std::string& key, const std::string& value);  // before close()
  void close();  // flushes, writes the footer, renames into place
  int64_t rows_written() const { return total_rows_ + buffered_rows_; }
  const std::string& path() const { return path_; }
  const std::vector<ColumnSpec>& columns() const { return columns_; }

  struct ColumnBuffer;  // defined in writer.cc

 private:
  ColumnBuffer& column(int col, Type type, bool list);
  void put_value(int col, Type type, const void* v);
  void put_list(int col, Type type, const void* v, size_t n);
  void flush_row_group();
  void write_bytes(const std::string& bytes);

  std::string path_, tmp_path_;
  std::vector<ColumnSpec> columns_;
  WriterOptions opt_;
  std::vector<std::unique_ptr<ColumnBuffer>> buffers_;
  FileMetaData meta_;
  Compressor compressor_;
  std::FILE* file_ = nullptr;
  int64_t offset_ = 0;
  int64_t total_rows_ = 0, buffered_rows_ = 0;
  bool closed_ = false;
  std::string scratch_, page_, compressed_;
};

}  // namespace bkd::parquet

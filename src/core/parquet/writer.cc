#include "core/parquet/writer.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "core/parquet/dictionary.h"
#include "core/parquet/encoding.h"
#include "core/util/error.h"

namespace bkd::parquet {

struct ParquetWriter::ColumnBuffer {
  ColumnSpec spec;
  int width = 0;
  int max_def = 0, max_rep = 0, def_list = 0;
  std::vector<uint8_t> values;   // non-null values, raw little-endian (bools: one byte each)
  std::vector<int32_t> lengths;  // list columns: elements per row, -1 for a null list
  std::vector<uint8_t> valid;    // nullable flat columns: 1 per present value, 0 per null
  int64_t rows = 0;
  void clear() { values.clear(), lengths.clear(), valid.clear(), rows = 0; }
};

namespace {

constexpr char kMagic[4] = {'P', 'A', 'R', '1'};

[[noreturn]] void io_fail(const std::string& what, const std::string& path) {
  throw Error("cannot " + what + " " + path + ": " + std::strerror(errno), "check the folder exists, is writable and has space");
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
std::string bytes_of(T v) {
  return std::string(reinterpret_cast<const char*>(&v), sizeof v);
}

// min/max over the non-null values, PLAIN-encoded; floats skip NaN and widen zeros to -0.0 / +0.0 so
// readers that compare with signed zeros stay correct (parquet.thrift ColumnOrder notes).
template <class T>
void fill_min_max(const uint8_t* v, size_t n, Statistics& s) {
  bool any = false;
  T lo{}, hi{};
  for (size_t i = 0; i < n; ++i) {
    T x = load<T>(v + i * sizeof(T));
    if constexpr (std::is_floating_point_v<T>) {
      if (std::isnan(x)) continue;
    }
    if (!any) lo = hi = x, any = true;
    else if (x < lo) lo = x;
    else if (x > hi) hi = x;
  }
  if (!any) return;
  if constexpr (std::is_floating_point_v<T>) {
    if (lo == 0) lo = -T(0);
    if (hi == 0) hi = T(0);
  }
  s.min_value = bytes_of(lo), s.max_value = bytes_of(hi);
}

Statistics column_statistics(const ParquetWriter::ColumnBuffer& b, int64_t nulls) {
  Statistics s;
  s.null_count = nulls;
  size_t n = b.values.size() / b.width;
  const uint8_t* v = b.values.data();
  switch (b.spec.type) {
    case Type::BOOLEAN: {
      bool any_t = false, any_f = false;
      for (size_t i = 0; i < n; ++i) (v[i] ? any_t : any_f) = true;
      if (n) s.min_value = std::string(1, any_f ? 0 : 1), s.max_value = std::string(1, any_t ? 1 : 0);
      break;
    }
    case Type::INT32: fill_min_max<int32_t>(v, n, s); break;
    case Type::INT64: fill_min_max<int64_t>(v, n, s); break;
    case Type::FLOAT: fill_min_max<float>(v, n, s); break;
    case Type::DOUBLE: fill_min_max<double>(v, n, s); break;
    default: break;
  }
  return s;
}

void put_u32_le(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }

// Levels as a V1 data page stores them: 4-byte length, then the RLE / bit-packed hybrid.
void put_levels(const std::vector<uint32_t>& levels, int max_level, std::string& out) {
  size_t at = out.size();
  put_u32_le(out, 0);
  rle_hybrid_encode(levels.data(), levels.size(), bit_width_of(max_level), out);
  uint32_t len = static_cast<uint32_t>(out.size() - at - 4);
  std::memcpy(&out[at], &len, 4);
}

}  // namespace

ParquetWriter::ParquetWriter(std::string path, std::vector<ColumnSpec> columns, WriterOptions options)
    : path_(std::move(path)), columns_(std::move(columns)), opt_(std::move(options)),
      compressor_(opt_.codec, opt_.zstd_level) {
  if (columns_.empty()) throw Error("Parquet writer for " + path_ + ": no columns");
  if (opt_.row_group_rows < 1) throw UsageError("PARQUET_ROW_GROUP_ROWS must be at least 1");
  meta_.schema = to_schema_elements(columns_);
  meta_.created_by = opt_.created_by;
  meta_.key_value_metadata = opt_.metadata;
  for (const auto& c : columns_) {
    auto b = std::make_unique<ColumnBuffer>();
    b->spec = c;
    b->width = value_width(c.type);
    if (c.list && c.element_nullable) throw Error("column '" + c.name + "': the writer writes required list elements");
    b->max_rep = c.list ? 1 : 0;
    b->def_list = c.nullable ? 1 : 0;
    b->max_def = b->def_list + (c.list ? 1 : 0);
    buffers_.push_back(std::move(b));
  }
  tmp_path_ = path_ + ".tmp-" + std::to_string(::getpid());
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (!file_) io_fail("create", tmp_path_);
  write_bytes(std::string(kMagic, 4));
}

ParquetWriter::~ParquetWriter() {
  if (file_) {
    std::fclose(file_);
    std::remove(tmp_path_.c_str());  // never leave a half file behind
  }
}

void ParquetWriter::write_bytes(const std::string& bytes) {
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) io_fail("write", tmp_path_);
  offset_ += static_cast<int64_t>(bytes.size());
}

ParquetWriter::ColumnBuffer& ParquetWriter::column(int col, Type type, bool list) {
  if (closed_) throw Error("Parquet writer for " + path_ + ": put after close()");
  if (col < 0 || static_cast<size_t>(col) >= buffers_.size())
    throw Error("Parquet writer for " + path_ + ": no column " + std::to_string(col));
  ColumnBuffer& b = *buffers_[col];
  if (b.spec.type != type || b.spec.list != list)
    throw Error("column '" + b.spec.name + "': value of the wrong type or shape", "this is a bug in the caller");
  if (b.rows != buffered_rows_) throw Error("column '" + b.spec.name + "': two values in one row");
  ++b.rows;
  return b;
}

void ParquetWriter::put_value(int col, Type type, const void* v) {
  ColumnBuffer& b = column(col, type, false);
  auto* p = static_cast<const uint8_t*>(v);
  b.values.insert(b.values.end(), p, p + b.width);
  if (b.spec.nullable) b.valid.push_back(1);
}

void ParquetWriter::put_list(int col, Type type, const void* v, size_t n) {
  ColumnBuffer& b = column(col, type, true);
  if (n > INT32_MAX) throw Error("column '" + b.spec.name + "': list too long");
  auto* p = static_cast<const uint8_t*>(v);
  b.values.insert(b.values.end(), p, p + n * b.width);
  b.lengths.push_back(static_cast<int32_t>(n));
}

void ParquetWriter::put_bool(int col, bool v) {
  uint8_t x = v ? 1 : 0;
  put_value(col, Type::BOOLEAN, &x);
}
void ParquetWriter::put_i32(int col, int32_t v) { put_value(col, Type::INT32, &v); }
void ParquetWriter::put_i64(int col, int64_t v) { put_value(col, Type::INT64, &v); }
void ParquetWriter::put_f32(int col, float v) { put_value(col, Type::FLOAT, &v); }
void ParquetWriter::put_f64(int col, double v) { put_value(col, Type::DOUBLE, &v); }
void ParquetWriter::put_list_i32(int col, const int32_t* v, size_t n) { put_list(col, Type::INT32, v, n); }
void ParquetWriter::put_list_i64(int col, const int64_t* v, size_t n) { put_list(col, Type::INT64, v, n); }
void ParquetWriter::put_list_f32(int col, const float* v, size_t n) { put_list(col, Type::FLOAT, v, n); }
void ParquetWriter::put_list_f64(int col, const double* v, size_t n) { put_list(col, Type::DOUBLE, v, n); }

void ParquetWriter::put_null(int col) {
  if (col < 0 || static_cast<size_t>(col) >= buffers_.size())
    throw Error("Parquet writer for " + path_ + ": no column " + std::to_string(col));
  ColumnBuffer& b = column(col, columns_[col].type, columns_[col].list);
  if (!b.spec.nullable) throw Error("column '" + b.spec.name + "' is not nullable");
  if (b.spec.list) b.lengths.push_back(-1);
  else b.valid.push_back(0);
}

void ParquetWriter::end_row() {
  for (const auto& b : buffers_)
    if (b->rows != buffered_rows_ + 1)
      throw Error("Parquet writer for " + path_ + ": row " + std::to_string(rows_written()) + " has no value for column '" +
                  b->spec.name + "'");
  ++buffered_rows_;
  if (buffered_rows_ >= opt_.row_group_rows) flush_row_group();
}

void ParquetWriter::set_metadata(const std::string& key, const std::string& value) {
  for (auto& kv : meta_.key_value_metadata)
    if (kv.key == key) {
      kv.value = value;
      return;
    }
  meta_.key_value_metadata.push_back({key, value});
}

void ParquetWriter::flush_row_group() {
  if (buffered_rows_ == 0) return;
  RowGroup rg;
  rg.num_rows = buffered_rows_;
  rg.file_offset = offset_;
  int64_t rg_start = offset_;
  std::vector<uint32_t> rep, def, dict_idx;
  std::vector<uint8_t> dict;
  for (auto& bp : buffers_) {
    ColumnBuffer& b = *bp;
    const size_t n_values = b.values.size() / b.width;
    ColumnChunk cc;
    ColumnMetaData& m = cc.meta;
    m.type = b.spec.type;
    m.codec = opt_.codec;
    m.path_in_schema = b.spec.list ? std::vector<std::string>{b.spec.name, "list", "element"}
                                   : std::vector<std::string>{b.spec.name};
    // Level entries: one per value, plus one per null or empty list / null value.
    int64_t nulls = 0;
    if (b.spec.list) {
      for (int32_t len : b.lengths) nulls += len <= 0 ? 1 : 0;
    } else if (b.spec.nullable) {
      for (uint8_t v : b.valid) nulls += v ? 0 : 1;
    }
    m.num_values = static_cast<int64_t>(n_values) + nulls;
    m.statistics = column_statistics(b, nulls);

    // Dictionary where it pays: distinct values plus bit-packed indices well under the plain size.
    bool use_dict = false;
    int dict_bw = 0;
    if (opt_.dictionary && b.spec.type != Type::BOOLEAN && n_values >= 16) {
      size_t max_distinct = std::min<size_t>(n_values / 4, 1u << 20);
      bool integers = b.spec.type == Type::INT32 || b.spec.type == Type::INT64;
      if (build_dictionary(b.values.data(), n_values, b.width, max_distinct, dict, dict_idx, integers)) {
        size_t d = dict.size() / b.width;
        dict_bw = std::max(1, bit_width_of(d - 1));
        double dict_bytes = static_cast<double>(dict.size()) + n_values * dict_bw / 8.0;
        use_dict = dict_bytes <= 0.75 * static_cast<double>(b.values.size());
      }
    }
    Encoding value_encoding = Encoding::PLAIN;
    if (use_dict) value_encoding = Encoding::RLE_DICTIONARY;
    else if (opt_.byte_stream_split && (b.spec.type == Type::FLOAT || b.spec.type == Type::DOUBLE))
      value_encoding = Encoding::BYTE_STREAM_SPLIT;

    const int64_t chunk_start = offset_;
    int64_t uncompressed_total = 0;
    auto emit_page = [&](PageHeader& h, const std::string& body) {
      compressed_.clear();
      compressor_.compress(reinterpret_cast<const uint8_t*>(body.data()), body.size(), compressed_);
      h.uncompressed_page_size = static_cast<int32_t>(body.size());
      h.compressed_page_size = static_cast<int32_t>(compressed_.size());
      scratch_.clear();
      write_page_header(h, scratch_);
      uncompressed_total += static_cast<int64_t>(scratch_.size() + body.size());
      write_bytes(scratch_);
      write_bytes(compressed_);
    };
    if (use_dict) {
      m.dictionary_page_offset = offset_;
      PageHeader h;
      h.type = PageType::DICTIONARY_PAGE;
      h.dict = DictionaryPageHeader{static_cast<int32_t>(dict.size() / b.width), Encoding::PLAIN};
      page_.assign(reinterpret_cast<const char*>(dict.data()), dict.size());
      emit_page(h, page_);
    }
    m.data_page_offset = offset_;

    // Data pages, each starting at a row boundary, holding about page_bytes of values.
    const size_t target_values = std::max<size_t>(1, opt_.page_bytes / b.width);
    size_t row = 0, value = 0;
    const size_t rows = static_cast<size_t>(buffered_rows_);
    while (row < rows) {
      size_t row_end = row, value_end = value;
      rep.clear(), def.clear();
      while (row_end < rows && (row_end == row || value_end - value < target_values)) {
        if (b.spec.list) {
          int32_t len = b.lengths[row_end];
          if (len <= 0) {
            rep.push_back(0), def.push_back(len < 0 ? 0 : b.def_list);
          } else {
            rep.push_back(0);
            rep.insert(rep.end(), len - 1, 1);
            def.insert(def.end(), len, b.max_def);
            value_end += len;
          }
        } else if (b.spec.nullable) {
          bool present = b.valid[row_end];
          def.push_back(present ? 1 : 0);
          value_end += present ? 1 : 0;
        } else {
          ++value_end;
        }
        ++row_end;
      }
      page_.clear();
      if (b.max_rep > 0) put_levels(rep, b.max_rep, page_);
      if (b.max_def > 0) put_levels(def, b.max_def, page_);
      const size_t count = value_end - value;
      const uint8_t* vals = b.values.data() + value * b.width;
      switch (value_encoding) {
        case Encoding::RLE_DICTIONARY:
          page_.push_back(static_cast<char>(dict_bw));
          rle_hybrid_encode(dict_idx.data() + value, count, dict_bw, page_);
          break;
        case Encoding::BYTE_STREAM_SPLIT: byte_stream_split_encode(vals, count, b.width, page_); break;
        default:
          if (b.spec.type == Type::BOOLEAN) plain_encode_bools(vals, count, page_);
          else page_.append(reinterpret_cast<const char*>(vals), count * b.width);
      }
      PageHeader h;
      h.type = PageType::DATA_PAGE;
      DataPageHeader d;
      d.num_values = static_cast<int32_t>(b.max_def > 0 ? def.size() : count);
      d.encoding = value_encoding;
      h.data = d;
      emit_page(h, page_);
      row = row_end, value = value_end;
    }
    m.encodings = {value_encoding, Encoding::RLE};
    if (use_dict) m.encodings.insert(m.encodings.begin(), Encoding::PLAIN);
    m.total_compressed_size = offset_ - chunk_start;
    m.total_uncompressed_size = uncompressed_total;
    cc.file_offset = chunk_start;
    rg.total_byte_size += uncompressed_total;
    rg.columns.push_back(std::move(cc));
    b.clear();
  }
  rg.total_compressed_size = offset_ - rg_start;
  meta_.row_groups.push_back(std::move(rg));
  total_rows_ += buffered_rows_;
  buffered_rows_ = 0;
}

void ParquetWriter::close() {
  if (closed_) return;
  flush_row_group();
  meta_.num_rows = total_rows_;
  std::string footer;
  write_file_metadata(meta_, footer);
  uint32_t len = static_cast<uint32_t>(footer.size());
  footer.append(reinterpret_cast<const char*>(&len), 4);
  footer.append(kMagic, 4);
  write_bytes(footer);
  if (std::fflush(file_) != 0 || ::fsync(fileno(file_)) != 0) io_fail("flush", tmp_path_);
  if (std::fclose(file_) != 0) {
    file_ = nullptr;
    std::remove(tmp_path_.c_str());
    io_fail("close", tmp_path_);
  }
  file_ = nullptr;
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    std::remove(tmp_path_.c_str());
    io_fail("rename into", path_);
  }
  closed_ = true;
}

}  // namespace bkd::parquet

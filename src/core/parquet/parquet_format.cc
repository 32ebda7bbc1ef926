#include "core/parquet/parquet_format.h"

namespace bkd::parquet {

const char* type_name(Type t) {
  switch (t) {
    case Type::BOOLEAN: return "BOOLEAN";
    case Type::INT32: return "INT32";
    case Type::INT64: return "INT64";
    case Type::INT96: return "INT96";
    case Type::FLOAT: return "FLOAT";
    case Type::DOUBLE: return "DOUBLE";
    case Type::BYTE_ARRAY: return "BYTE_ARRAY";
    case Type::FIXED_LEN_BYTE_ARRAY: return "FIXED_LEN_BYTE_ARRAY";
  }
  return "?";
}

const char* codec_name(Codec c) {
  switch (c) {
    case Codec::UNCOMPRESSED: return "UNCOMPRESSED";
    case Codec::SNAPPY: return "SNAPPY";
    case Codec::GZIP: return "GZIP";
    case Codec::LZO: return "LZO";
    case Codec::BROTLI: return "BROTLI";
    case Codec::LZ4: return "LZ4";
    case Codec::ZSTD: return "ZSTD";
    case Codec::LZ4_RAW: return "LZ4_RAW";
  }
  return "?";
}

const char* encoding_name(Encoding e) {
  switch (e) {
    case Encoding::PLAIN: return "PLAIN";
    case Encoding::PLAIN_DICTIONARY: return "PLAIN_DICTIONARY";
    case Encoding::RLE: return "RLE";
    case Encoding::BIT_PACKED: return "BIT_PACKED";
    case Encoding::DELTA_BINARY_PACKED: return "DELTA_BINARY_PACKED";
    case Encoding::DELTA_LENGTH_BYTE_ARRAY: return "DELTA_LENGTH_BYTE_ARRAY";
    case Encoding::DELTA_BYTE_ARRAY: return "DELTA_BYTE_ARRAY";
    case Encoding::RLE_DICTIONARY: return "RLE_DICTIONARY";
    case Encoding::BYTE_STREAM_SPLIT: return "BYTE_STREAM_SPLIT";
  }
  return "?";
}

// ---------------------------------------------------------------- writing

namespace {

void write_statistics(CompactWriter& w, int16_t id, const Statistics& s) {
  w.field_struct_begin(id);
  if (s.null_count) w.field_i64(3, *s.null_count);
  if (s.max_value) w.field_binary(5, *s.max_value);
  if (s.min_value) w.field_binary(6, *s.min_value);
  w.struct_end();
}

void write_schema_element(CompactWriter& w, const SchemaElement& e) {
  w.struct_begin();
  if (e.type) w.field_i32(1, static_cast<int32_t>(*e.type));
  if (e.type_length) w.field_i32(2, *e.type_length);
  if (e.repetition) w.field_i32(3, static_cast<int32_t>(*e.repetition));
  w.field_binary(4, e.name);
  if (e.num_children > 0) w.field_i32(5, e.num_children);
  if (e.converted_type) w.field_i32(6, *e.converted_type);
  if (e.logical_list || e.logical_string) {
    w.field_struct_begin(10);              // LogicalType union
    w.field_struct_begin(e.logical_list ? 3 : 1);  // ListType / StringType: empty structs
    w.struct_end();
    w.struct_end();
  }
  w.struct_end();
}

void write_column_meta(CompactWriter& w, const ColumnMetaData& m) {
  w.field_struct_begin(3);
  w.field_i32(1, static_cast<int32_t>(m.type));
  w.field_list_begin(2, ttype::kI32, m.encodings.size());
  for (Encoding e : m.encodings) w.elem_i32(static_cast<int32_t>(e));
  w.field_list_begin(3, ttype::kBinary, m.path_in_schema.size());
  for (const auto& p : m.path_in_schema) w.elem_binary(p);
  w.field_i32(4, static_cast<int32_t>(m.codec));
  w.field_i64(5, m.num_values);
  w.field_i64(6, m.total_uncompressed_size);
  w.field_i64(7, m.total_compressed_size);
  w.field_i64(9, m.data_page_offset);
  if (m.dictionary_page_offset) w.field_i64(11, *m.dictionary_page_offset);
  if (m.statistics) write_statistics(w, 12, *m.statistics);
  w.struct_end();
}

}  // namespace

void write_file_metadata(const FileMetaData& m, std::string& out) {
  CompactWriter w(out);
  w.field_i32(1, m.version);
  w.field_list_begin(2, ttype::kStruct, m.schema.size());
  for (const auto& e : m.schema) write_schema_element(w, e);
  w.field_i64(3, m.num_rows);
  w.field_list_begin(4, ttype::kStruct, m.row_groups.size());
  for (const auto& rg : m.row_groups) {
    w.struct_begin();
    w.field_list_begin(1, ttype::kStruct, rg.columns.size());
    for (const auto& c : rg.columns) {
      w.struct_begin();
      w.field_i64(2, c.file_offset);
      write_column_meta(w, c.meta);
      w.struct_end();
    }
    w.field_i64(2, rg.total_byte_size);
    w.field_i64(3, rg.num_rows);
    if (rg.file_offset) w.field_i64(5, *rg.file_offset);
    if (rg.total_compressed_size) w.field_i64(6, *rg.total_compressed_size);
    w.struct_end();
  }
  if (!m.key_value_metadata.empty()) {
    w.field_list_begin(5, ttype::kStruct, m.key_value_metadata.size());
    for (const auto& kv : m.key_value_metadata) {
      w.struct_begin();
      w.field_binary(1, kv.key);
      w.field_binary(2, kv.value);
      w.struct_end();
    }
  }
  w.field_binary(6, m.created_by);
  // column_orders: TypeDefinedOrder for every leaf, so readers may trust min_value/max_value.
  size_t leaves = 0;
  for (const auto& e : m.schema) leaves += (e.num_children == 0 && e.type) ? 1 : 0;
  w.field_list_begin(7, ttype::kStruct, leaves);
  for (size_t i = 0; i < leaves; ++i) {
    w.struct_begin();
    w.field_struct_begin(1);
    w.struct_end();
    w.struct_end();
  }
  w.struct_end();
}

void write_page_header(const PageHeader& h, std::string& out) {
  CompactWriter w(out);
  w.field_i32(1, static_cast<int32_t>(h.type));
  w.field_i32(2, h.uncompressed_page_size);
  w.field_i32(3, h.compressed_page_size);
  if (h.data) {
    w.field_struct_begin(5);
    w.field_i32(1, h.data->num_values);
    w.field_i32(2, static_cast<int32_t>(h.data->encoding));
    w.field_i32(3, static_cast<int32_t>(h.data->definition_level_encoding));
    w.field_i32(4, static_cast<int32_t>(h.data->repetition_level_encoding));
    w.struct_end();
  }
  if (h.dict) {
    w.field_struct_begin(7);
    w.field_i32(1, h.dict->num_values);
    w.field_i32(2, static_cast<int32_t>(h.dict->encoding));
    w.struct_end();
  }
  w.struct_end();
}

// ---------------------------------------------------------------- reading

namespace {

template <class E>
E read_enum(CompactReader& r, uint8_t t, int32_t max, const char* what) {
  int32_t v = r.read_i32(t);
  if (v < 0 || v > max) r.fail(std::string("bad ") + what + " value " + std::to_string(v));
  return static_cast<E>(v);
}

int64_t read_nonneg(CompactReader& r, uint8_t t, const char* what) {
  int64_t v = r.read_int(t);
  if (v < 0) r.fail(std::string("negative ") + what);
  return v;
}

Statistics read_statistics(CompactReader& r) {
  Statistics s;
  std::optional<std::string> old_min, old_max;
  r.read_struct([&](int16_t id, uint8_t t) {
    switch (id) {
      case 1: old_max = r.read_binary(t); return true;
      case 2: old_min = r.read_binary(t); return true;
      case 3: s.null_count = r.read_int(t); return true;
      case 5: s.max_value = r.read_binary(t); return true;
      case 6: s.min_value = r.read_binary(t); return true;
      default: return false;
    }
  });
  return s;
}

SchemaElement read_schema_element(CompactReader& r) {
  SchemaElement e;
  bool has_name = false;
  r.read_struct([&](int16_t id, uint8_t t) {
    switch (id) {
      case 1: e.type = read_enum<Type>(r, t, 7, "physical type"); return true;
      case 2: e.type_length = r.read_i32(t); return true;
      case 3: e.repetition = read_enum<Repetition>(r, t, 2, "repetition"); return true;
      case 4: e.name = r.read_binary(t), has_name = true; return true;
      case 5: {
        int32_t n = r.read_i32(t);
        if (n < 0) r.fail("negative num_children");
        e.num_children = n;
        return true;
      }
      case 6: e.converted_type = r.read_i32(t); return true;
      case 10:
        if (t != ttype::kStruct) r.fail("logicalType is not a struct");
        r.read_struct([&](int16_t lid, uint8_t) {
          if (lid == 3) e.logical_list = true;
          if (lid == 1) e.logical_string = true;
          return false;
        });
        return true;
      default: return false;
    }
  });
  if (!has_name) r.fail("schema element without a name");
  return e;
}

ColumnMetaData read_column_meta(CompactReader& r) {
  ColumnMetaData m;
  bool has_type = false, has_codec = false, has_nv = false, has_dpo = false;
  r.read_struct([&](int16_t id, uint8_t t) {
    uint8_t et;
    switch (id) {
      case 1: m.type = read_enum<Type>(r, t, 7, "physical type"), has_type = true; return true;
      case 2: {
        size_t n = r.read_list_header(t, &et);
        for (size_t i = 0; i < n; ++i) m.encodings.push_back(static_cast<Encoding>(r.read_i32(et)));
        return true;
      }
      case 3: {
        size_t n = r.read_list_header(t, &et);
        for (size_t i = 0; i < n; ++i) m.path_in_schema.push_back(r.read_binary(et));
        return true;
      }
      case 4: m.codec = read_enum<Codec>(r, t, 7, "compression codec"), has_codec = true; return true;
      case 5: m.num_values = read_nonneg(r, t, "num_values"), has_nv = true; return true;
      case 6: m.total_uncompressed_size = read_nonneg(r, t, "total_uncompressed_size"); return true;
      case 7: m.total_compressed_size = read_nonneg(r, t, "total_compressed_size"); return true;
      case 9: m.data_page_offset = read_nonneg(r, t, "data_page_offset"), has_dpo = true; return true;
      case 11: m.dictionary_page_offset = read_nonneg(r, t, "dictionary_page_offset"); return true;
      case 12:
        if (t != ttype::kStruct) r.fail("statistics is not a struct");
        m.statistics = read_statistics(r);
        return true;
      default: return false;
    }
  });
  if (!has_type || !has_codec || !has_nv || !has_dpo) r.fail("column metadata misses a required field");
  return m;
}

RowGroup read_row_group(CompactReader& r) {
  RowGroup rg;
  r.read_struct([&](int16_t id, uint8_t t) {
    uint8_t et;
    switch (id) {
      case 1: {
        size_t n = r.read_list_header(t, &et);
        if (et != ttype::kStruct) r.fail("row group columns are not structs");
        for (size_t i = 0; i < n; ++i) {
          ColumnChunk c;
          r.read_struct([&](int16_t cid, uint8_t ct) {
            switch (cid) {
              case 1: r.read_binary(ct), c.external_file = true; return true;
              case 2: c.file_offset = r.read_int(ct); return true;
              case 3:
                if (ct != ttype::kStruct) r.fail("column metadata is not a struct");
                c.meta = read_column_meta(r), c.has_meta = true;
                return true;
              default: return false;
            }
          });
          rg.columns.push_back(std::move(c));
        }
        return true;
      }
      case 2: rg.total_byte_size = r.read_int(t); return true;
      case 3: rg.num_rows = read_nonneg(r, t, "row group num_rows"); return true;
      case 5: rg.file_offset = r.read_int(t); return true;
      case 6: rg.total_compressed_size = r.read_int(t); return true;
      default: return false;
    }
  });
  return rg;
}

}  // namespace

FileMetaData parse_file_metadata(const uint8_t* data, size_t size, const std::string& where) {
  CompactReader r(data, size, where + ": footer");
  FileMetaData m;
  r.read_struct([&](int16_t id, uint8_t t) {
    uint8_t et;
    switch (id) {
      case 1: m.version = r.read_i32(t); return true;
      case 2: {
        size_t n = r.read_list_header(t, &et);
        if (et != ttype::kStruct) r.fail("schema elements are not structs");
        for (size_t i = 0; i < n; ++i) m.schema.push_back(read_schema_element(r));
        return true;
      }
      case 3: m.num_rows = read_nonneg(r, t, "num_rows"); return true;
      case 4: {
        size_t n = r.read_list_header(t, &et);
        if (et != ttype::kStruct) r.fail("row groups are not structs");
        for (size_t i = 0; i < n; ++i) m.row_groups.push_back(read_row_group(r));
        return true;
      }
      case 5: {
        size_t n = r.read_list_header(t, &et);
        if (et != ttype::kStruct) r.fail("key-value metadata entries are not structs");
        for (size_t i = 0; i < n; ++i) {
          KeyValue kv;
          r.read_struct([&](int16_t kid, uint8_t kt) {
            if (kid == 1) return kv.key = r.read_binary(kt), true;
            if (kid == 2) return kv.value = r.read_binary(kt), true;
            return false;
          });
          m.key_value_metadata.push_back(std::move(kv));
        }
        return true;
      }
      case 6: m.created_by = r.read_binary(t); return true;
      case 8: m.encrypted = true; return false;
      default: return false;
    }
  });
  return m;
}

PageHeader parse_page_header(const uint8_t* data, size_t size, const std::string& where, size_t* header_size) {
  CompactReader r(data, size, where);
  PageHeader h;
  bool has_type = false, has_u = false, has_c = false;
  r.read_struct([&](int16_t id, uint8_t t) {
    switch (id) {
      case 1: h.type = read_enum<PageType>(r, t, 3, "page type"), has_type = true; return true;
      case 2: h.uncompressed_page_size = r.read_i32(t), has_u = true; return true;
      case 3: h.compressed_page_size = r.read_i32(t), has_c = true; return true;
      case 5: {
        if (t != ttype::kStruct) r.fail("data page header is not a struct");
        DataPageHeader d;
        r.read_struct([&](int16_t did, uint8_t dt) {
          switch (did) {
            case 1: d.num_values = r.read_i32(dt); return true;
            case 2: d.encoding = static_cast<Encoding>(r.read_i32(dt)); return true;
            case 3: d.definition_level_encoding = static_cast<Encoding>(r.read_i32(dt)); return true;
            case 4: d.repetition_level_encoding = static_cast<Encoding>(r.read_i32(dt)); return true;
            default: return false;
          }
        });
        h.data = d;
        return true;
      }
      case 7: {
        if (t != ttype::kStruct) r.fail("dictionary page header is not a struct");
        DictionaryPageHeader d;
        r.read_struct([&](int16_t did, uint8_t dt) {
          switch (did) {
            case 1: d.num_values = r.read_i32(dt); return true;
            case 2: d.encoding = static_cast<Encoding>(r.read_i32(dt)); return true;
            default: return false;
          }
        });
        h.dict = d;
        return true;
      }
      case 8: {
        if (t != ttype::kStruct) r.fail("data page v2 header is not a struct");
        DataPageHeaderV2 d;
        r.read_struct([&](int16_t did, uint8_t dt) {
          switch (did) {
            case 1: d.num_values = r.read_i32(dt); return true;
            case 2: d.num_nulls = r.read_i32(dt); return true;
            case 3: d.num_rows = r.read_i32(dt); return true;
            case 4: d.encoding = static_cast<Encoding>(r.read_i32(dt)); return true;
            case 5: d.definition_levels_byte_length = r.read_i32(dt); return true;
            case 6: d.repetition_levels_byte_length = r.read_i32(dt); return true;
            case 7: d.is_compressed = r.read_bool(dt); return true;
            default: return false;
          }
        });
        h.data_v2 = d;
        return true;
      }
      default: return false;
    }
  });
  if (!has_type || !has_u || !has_c) r.fail("page header misses type or sizes");
  if (h.uncompressed_page_size < 0 || h.compressed_page_size < 0) r.fail("negative page size");
  *header_size = r.consumed();
  return h;
}

}  // namespace bkd::parquet

#pragma once
// The subset of parquet-format's parquet.thrift that we write and read, as plain structs, with their
// compact-protocol encoders and decoders. Field ids follow parquet.thrift; unknown fields are skipped.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/parquet/thrift_compact.h"

namespace bkd::parquet {

enum class Type : int32_t { BOOLEAN = 0, INT32 = 1, INT64 = 2, INT96 = 3, FLOAT = 4, DOUBLE = 5, BYTE_ARRAY = 6,
                            FIXED_LEN_BYTE_ARRAY = 7 };
enum class Repetition : int32_t { REQUIRED = 0, OPTIONAL = 1, REPEATED = 2 };
enum class Encoding : int32_t { PLAIN = 0, PLAIN_DICTIONARY = 2, RLE = 3, BIT_PACKED = 4, DELTA_BINARY_PACKED = 5,
                                DELTA_LENGTH_BYTE_ARRAY = 6, DELTA_BYTE_ARRAY = 7, RLE_DICTIONARY = 8,
                                BYTE_STREAM_SPLIT = 9 };
enum class Codec : int32_t { UNCOMPRESSED = 0, SNAPPY = 1, GZIP = 2, LZO = 3, BROTLI = 4, LZ4 = 5, ZSTD = 6,
                             LZ4_RAW = 7 };
enum class PageType : int32_t { DATA_PAGE = 0, INDEX_PAGE = 1, DICTIONARY_PAGE = 2, DATA_PAGE_V2 = 3 };
constexpr int32_t kConvertedList = 3;  // ConvertedType.LIST

const char* type_name(Type t);
const char* codec_name(Codec c);
const char* encoding_name(Encoding e);

struct Statistics {
  std::optional<std::string> min_value, max_value;  // PLAIN-encoded values (fields 6 and 5)
  std::optional<int64_t> null_count;
};

struct SchemaElement {
  std::optional<Type> type;
  std::optional<int32_t> type_length;
  std::optional<Repetition> repetition;
  std::string name;
  int32_t num_children = 0;
  std::optional<int32_t> converted_type;
  bool logical_list = false;    // LogicalType.LIST
  bool logical_string = false;  // LogicalType.STRING
};

struct ColumnMetaData {
  Type type = Type::INT32;
  std::vector<Encoding> encodings;
  std::vector<std::string> path_in_schema;
  Codec codec = Codec::UNCOMPRESSED;
  int64_t num_values = 0;
  int64_t total_uncompressed_size = 0;
  int64_t total_compressed_size = 0;
  int64_t data_page_offset = 0;
  std::optional<int64_t> dictionary_page_offset;
  std::optional<Statistics> statistics;
};

struct ColumnChunk {
  int64_t file_offset = 0;
  ColumnMetaData meta;
  bool has_meta = false;
  bool external_file = false;  // file_path set: data lives elsewhere (unsupported)
};

struct RowGroup {
  std::vector<ColumnChunk> columns;
  int64_t total_byte_size = 0;
  int64_t num_rows = 0;
  std::optional<int64_t> file_offset;
  std::optional<int64_t> total_compressed_size;
};

struct KeyValue {
  std::string key, value;
};

struct FileMetaData {
  int32_t version = 1;
  std::vector<SchemaElement> schema;
  int64_t num_rows = 0;
  std::vector<RowGroup> row_groups;
  std::vector<KeyValue> key_value_metadata;
  std::string created_by;
  bool encrypted = false;  // encryption_algorithm present
};

struct DataPageHeader {
  int32_t num_values = 0;
  Encoding encoding = Encoding::PLAIN;
  Encoding definition_level_encoding = Encoding::RLE;
  Encoding repetition_level_encoding = Encoding::RLE;
};

struct DictionaryPageHeader {
  int32_t num_values = 0;
  Encoding encoding = Encoding::PLAIN;
};

struct DataPageHeaderV2 {
  int32_t num_values = 0, num_nulls = 0, num_rows = 0;
  Encoding encoding = Encoding::PLAIN;
  int32_t definition_levels_byte_length = 0, repetition_levels_byte_length = 0;
  bool is_compressed = true;
};

struct PageHeader {
  PageType type = PageType::DATA_PAGE;
  int32_t uncompressed_page_size = 0, compressed_page_size = 0;
  std::optional<DataPageHeader> data;
  std::optional<DictionaryPageHeader> dict;
  std::optional<DataPageHeaderV2> data_v2;
};

void write_file_metadata(const FileMetaData& m, std::string& out);
void write_page_header(const PageHeader& h, std::string& out);
// `where` prefixes error messages (file name and what is being parsed).
FileMetaData parse_file_metadata(const uint8_t* data, size_t size, const std::string& where);
// Returns the header and sets *header_size to the bytes it took.
PageHeader parse_page_header(const uint8_t* data, size_t size, const std::string& where, size_t* header_size);

}  // namespace bkd::parquet

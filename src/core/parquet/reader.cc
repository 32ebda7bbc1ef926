#include "core/parquet/reader.h"

#include <algorithm>
#include <cstring>

#include "core/parquet/compression.h"
#include "core/parquet/encoding.h"
#include "core/util/error.h"
#include "core/util/fs.h"

namespace bkd::parquet {

namespace {

constexpr char kMagic[4] = {'P', 'A', 'R', '1'};
const char* kHint = "the file is damaged, truncated or not a Parquet file; re-create it";

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

struct PageFail {
  std::string where;
  [[noreturn]] void operator()(const std::string& what) const { throw Error(where + ": " + what, kHint); }
};

// Decodes `n` levels stored V1-style (4-byte length + hybrid) or raw (V2, `len` given); returns bytes used.
size_t decode_levels(const uint8_t* p, size_t avail, bool v1_prefix, size_t v2_len, int max_level, size_t n,
                     std::vector<uint32_t>& out, const PageFail& fail, const char* which) {
  out.resize(n);
  size_t used = 0, len = v2_len;
  if (v1_prefix) {
    if (avail < 4) fail(std::string(which) + " level length runs past the page");
    len = load_u32(p);
    p += 4, avail -= 4, used = 4;
  }
  if (len > avail) fail(std::string(which) + " levels (" + std::to_string(len) + " bytes) run past the page");
  const int bw = bit_width_of(max_level);
  rle_hybrid_decode(p, len, bw, n, out.data(), fail.where + ": " + which + " levels");
  // A bit width that can hold only levels up to the maximum needs no check (max 1 at width 1, 3 at 2).
  if ((1u << bw) - 1 > static_cast<uint32_t>(max_level)) {
    uint32_t hi = 0;
    for (size_t i = 0; i < n; ++i) hi = std::max(hi, out[i]);
    if (hi > static_cast<uint32_t>(max_level))
      for (size_t i = 0; i < n; ++i)
        if (out[i] > static_cast<uint32_t>(max_level))
          fail(std::string(which) + " level " + std::to_string(out[i]) + " above the maximum " + std::to_string(max_level));
  }
  return used + len;
}

}  // namespace

struct ParquetReader::Scratch {
  Decompressor decompressor;
  std::vector<uint8_t> dict, page;
  std::vector<uint32_t> rep, def, idx;
};

ParquetReader::ParquetReader(const std::string& path, ReaderLimits limits)
    : path_(path), limits_(limits), scratch_(std::make_unique<Scratch>()) {
  if (!file_exists(path)) throw Error("no such file: " + path, "check the shard path");
  map_ = std::make_unique<MappedFile>(path);
  data_ = map_->data();
  size_ = map_->size();
  open();
}

ParquetReader::ParquetReader(const uint8_t* data, size_t size, std::string name, ReaderLimits limits)
    : path_(std::move(name)), data_(data), size_(size), limits_(limits), scratch_(std::make_unique<Scratch>()) {
  open();
}

ParquetReader::~ParquetReader() = default;

void ParquetReader::fail(const std::string& what) const { throw Error(path_ + ": " + what, kHint); }

void ParquetReader::open() {
  if (size_ < 12) fail("only " + std::to_string(size_) + " bytes, too small to be a Parquet file");
  if (std::memcmp(data_, kMagic, 4) != 0) fail("does not start with the Parquet magic PAR1");
  if (std::memcmp(data_ + size_ - 4, "PARE", 4) == 0) fail("encrypted Parquet footers are not supported");
  if (std::memcmp(data_ + size_ - 4, kMagic, 4) != 0) fail("does not end with the Parquet magic PAR1 (truncated?)");
  uint32_t footer_len = load_u32(data_ + size_ - 8);
  if (footer_len > size_ - 12) fail("footer length " + std::to_string(footer_len) + " is larger than the file allows");
  footer_start_ = static_cast<int64_t>(size_ - 8 - footer_len);
  meta_ = parse_file_metadata(data_ + footer_start_, footer_len, path_);
  if (meta_.encrypted) fail("encrypted Parquet files are not supported");
  leaves_ = layout_from_schema(meta_.schema, path_);

  int64_t rows = 0;
  for (size_t r = 0; r < meta_.row_groups.size(); ++r) {
    const RowGroup& rg = meta_.row_groups[r];
    std::string where = "row group " + std::to_string(r);
    if (rg.num_rows > INT32_MAX * 64ll) fail(where + ": implausible row count " + std::to_string(rg.num_rows));
    rows += rg.num_rows;
    if (rg.columns.size() != leaves_.size())
      fail(where + " has " + std::to_string(rg.columns.size()) + " columns, the schema " + std::to_string(leaves_.size()));
    for (size_t c = 0; c < leaves_.size(); ++c) {
      const ColumnChunk& cc = rg.columns[c];
      std::string cw = where + ", column '" + leaves_[c].spec.name + "'";
      if (!cc.has_meta) fail(cw + ": no column metadata");
      if (cc.external_file) fail(cw + ": data in another file is not supported");
      const ColumnMetaData& m = cc.meta;
      if (m.type != leaves_[c].spec.type)
        fail(cw + ": type " + type_name(m.type) + " does not match the schema's " + type_name(leaves_[c].spec.type));
      if (m.path_in_schema != leaves_[c].path) fail(cw + ": path_in_schema does not match the schema");
      if (!codec_supported(m.codec)) fail(cw + ": compression " + codec_name(m.codec) + " is not supported");
      if (m.num_values > limits_.max_values_per_chunk) fail(cw + ": implausible value count");
      bool repeated = leaves_[c].max_rep > 0;
      if (!repeated && m.num_values != rg.num_rows)
        fail(cw + ": " + std::to_string(m.num_values) + " values for " + std::to_string(rg.num_rows) + " rows");
      if (repeated && m.num_values < rg.num_rows) fail(cw + ": fewer values than rows");
      int64_t start = m.data_page_offset;
      if (m.dictionary_page_offset && *m.dictionary_page_offset >= 4 && *m.dictionary_page_offset < start)
        start = *m.dictionary_page_offset;
      if (start < 4 || start >= footer_start_ || m.total_compressed_size > footer_start_ - start)
        fail(cw + ": byte range " + std::to_string(start) + "+" + std::to_string(m.total_compressed_size) +
             " lies outside the data area (4.." + std::to_string(footer_start_) + ")");
    }
  }
  if (rows != meta_.num_rows)
    fail("row groups hold " + std::to_string(rows) + " rows, the footer says " + std::to_string(meta_.num_rows));
}

int ParquetReader::column_index(const std::string& name) const {
  for (size_t i = 0; i < leaves_.size(); ++i)
    if (leaves_[i].spec.name == name) return static_cast<int>(i);
  return -1;
}

std::optional<std::string> ParquetReader::metadata_value(const std::string& key) const {
  for (const auto& kv : meta_.key_value_metadata)
    if (kv.key == key) return kv.value;
  return std::nullopt;
}

void ParquetReader::read_row_group(int rg, RowGroupData& out, const std::vector<int>* wanted) const {
  if (rg < 0 || rg >= num_row_groups()) fail("no row group " + std::to_string(rg));
  out.rows = meta_.row_groups[rg].num_rows;
  out.columns.resize(leaves_.size());
  for (size_t c = 0; c < leaves_.size(); ++c) {
    ColumnData& cd = out.columns[c];
    cd.spec = leaves_[c].spec;
    cd.rows = 0;
    cd.values.clear(), cd.valid.clear(), cd.offsets.clear(), cd.elem_valid.clear();
    bool want = !wanted;
    if (wanted)
      for (int w : *wanted) want |= w == static_cast<int>(c);
    if (want) read_column(rg, static_cast<int>(c), cd);
  }
}

void ParquetReader::read_column(int rg_index, int col, ColumnData& out) const {
  const RowGroup& rg = meta_.row_groups[rg_index];
  const ColumnMetaData& m = rg.columns[col].meta;
  const LeafLayout& L = leaves_[col];
  const std::string where = path_ + ": row group " + std::to_string(rg_index) + ", column '" + L.spec.name + "'";
  const int width = value_width(L.spec.type);

  int64_t start = m.data_page_offset;
  if (m.dictionary_page_offset && *m.dictionary_page_offset >= 4 && *m.dictionary_page_offset < start)
    start = *m.dictionary_page_offset;
  const int64_t end = start + m.total_compressed_size;

  Decompressor& decompressor = scratch_->decompressor;
  std::vector<uint8_t>& dict = scratch_->dict;
  std::vector<uint8_t>& page = scratch_->page;
  std::vector<uint32_t>& rep = scratch_->rep;
  std::vector<uint32_t>& def = scratch_->def;
  std::vector<uint32_t>& idx = scratch_->idx;
  size_t dict_n = 0;
  bool have_dict = false;
  int64_t levels_read = 0, elems = 0;
  bool any_null_row = false, any_null_elem = false;
  if (L.spec.list) out.offsets.reserve(static_cast<size_t>(rg.num_rows) + 1);

  int64_t pos = start;
  while (levels_read < m.num_values) {
    PageFail fail{where + ": page at byte " + std::to_string(pos)};
    if (pos >= end)
      fail("column chunk ends after " + std::to_string(levels_read) + " of " + std::to_string(m.num_values) + " values");
    size_t hsize = 0;
    PageHeader h = parse_page_header(data_ + pos, static_cast<size_t>(end - pos), fail.where + ": header", &hsize);
    pos += static_cast<int64_t>(hsize);
    if (h.compressed_page_size > end - pos)
      fail("compressed size " + std::to_string(h.compressed_page_size) + " runs past the column chunk");
    if (h.uncompressed_page_size > limits_.max_page_bytes)
      fail("uncompressed size " + std::to_string(h.uncompressed_page_size) + " is implausible");
    const uint8_t* body = data_ + pos;
    const size_t body_size = static_cast<size_t>(h.compressed_page_size);
    pos += h.compressed_page_size;

    if (h.type == PageType::INDEX_PAGE) continue;
    if (h.type == PageType::DICTIONARY_PAGE) {
      if (!h.dict) fail("dictionary page without its header");
      if (have_dict) fail("second dictionary page in one column chunk");
      if (L.spec.type == Type::BOOLEAN) fail("dictionary page for a BOOLEAN column");
      if (h.dict->encoding != Encoding::PLAIN && h.dict->encoding != Encoding::PLAIN_DICTIONARY)
        fail(std::string("dictionary page encoding ") + encoding_name(h.dict->encoding) + " is not supported");
      if (h.dict->num_values < 0 || static_cast<int64_t>(h.dict->num_values) * width > h.uncompressed_page_size)
        fail("dictionary of " + std::to_string(h.dict->num_values) + " values does not fit its page");
      page.resize(static_cast<size_t>(h.uncompressed_page_size));
      decompressor.decompress(m.codec, body, body_size, page.data(), page.size(), fail.where);
      dict_n = static_cast<size_t>(h.dict->num_values);
      dict.assign(page.begin(), page.begin() + dict_n * width);
      have_dict = true;
      continue;
    }
    if (h.type != PageType::DATA_PAGE && h.type != PageType::DATA_PAGE_V2) continue;

    // Uniform view of V1 and V2 data pages.
    const bool v2 = h.type == PageType::DATA_PAGE_V2;
    if (!v2 && !h.data) fail("data page without its header");
    if (v2 && !h.data_v2) fail("data page v2 without its header");
    const int64_t n = v2 ? h.data_v2->num_values : h.data->num_values;
    const Encoding enc = v2 ? h.data_v2->encoding : h.data->encoding;
    if (n < 0 || n > limits_.max_values_per_page) fail("implausible value count " + std::to_string(n));
    if (levels_read + n > m.num_values)
      fail("pages hold more values than the column chunk's " + std::to_string(m.num_values));
    const uint8_t* p;
    size_t avail;
    size_t used = 0;
    if (!v2) {
      if (L.max_rep > 0 && h.data->repetition_level_encoding != Encoding::RLE)
        fail("repetition level encoding is not RLE");
      if (L.max_def > 0 && h.data->definition_level_encoding != Encoding::RLE)
        fail("definition level encoding is not RLE");
      page.resize(static_cast<size_t>(h.uncompressed_page_size));
      decompressor.decompress(m.codec, body, body_size, page.data(), page.size(), fail.where);
      p = page.data(), avail = page.size();
      if (L.max_rep > 0) used += decode_levels(p, avail, true, 0, L.max_rep, n, rep, fail, "repetition");
      if (L.max_def > 0) used += decode_levels(p + used, avail - used, true, 0, L.max_def, n, def, fail, "definition");
      p += used, avail -= used;
    } else {
      const auto& d = *h.data_v2;
      if (d.repetition_levels_byte_length < 0 || d.definition_levels_byte_length < 0 ||
          static_cast<int64_t>(d.repetition_levels_byte_length) + d.definition_levels_byte_length >
              std::min<int64_t>(h.compressed_page_size, h.uncompressed_page_size))
        fail("level byte lengths do not fit the page");
      size_t rl = d.repetition_levels_byte_length, dl = d.definition_levels_byte_length;
      if (L.max_rep > 0) decode_levels(body, rl, false, rl, L.max_rep, n, rep, fail, "repetition");
      if (L.max_def > 0) decode_levels(body + rl, dl, false, dl, L.max_def, n, def, fail, "definition");
      size_t values_compressed = body_size - rl - dl;
      size_t values_size = static_cast<size_t>(h.uncompressed_page_size) - rl - dl;
      page.resize(values_size);
      Codec codec = d.is_compressed ? m.codec : Codec::UNCOMPRESSED;
      decompressor.decompress(codec, body + rl + dl, values_compressed, page.data(), values_size, fail.where);
      p = page.data(), avail = values_size;
    }

    // Which level entries carry a value, and the row / list structure.
    size_t present = 0;
    if (L.max_def == 0) {
      present = static_cast<size_t>(n);
    } else {
      for (int64_t i = 0; i < n; ++i) present += def[i] == static_cast<uint32_t>(L.max_def);
    }
    if (L.spec.list && !L.spec.nullable && !L.spec.element_nullable) {
      // Required lists of required elements (our KD shards): a row starts at repetition level 0, an
      // entry holds an element when its definition level reaches the element's.
      const uint32_t def_elem = static_cast<uint32_t>(L.def_elem);
      const bool has_def = L.max_def > 0;
      size_t at = out.offsets.size(), starts = 0;
      for (int64_t i = 0; i < n; ++i) starts += rep[i] == 0;
      if (at == 0 && n > 0 && rep[0] != 0) fail("the first value continues a list (repetition level 1)");
      out.offsets.resize(at + starts);
      int64_t* off = out.offsets.data() + at;
      bool empty_continues = false;
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t r = rep[i];
        const bool elem = !has_def || def[i] >= def_elem;
        if (r == 0) *off++ = elems;
        empty_continues |= !elem && r != 0;
        elems += elem;
      }
      if (empty_continues) fail("an empty or null list continues a row");
    } else if (L.spec.list) {
      for (int64_t i = 0; i < n; ++i) {
        uint32_t d = L.max_def > 0 ? def[i] : 0;
        if (rep[i] == 0) {
          out.offsets.push_back(elems);
          if (L.spec.nullable) {
            bool ok = d >= static_cast<uint32_t>(L.def_list);
            out.valid.push_back(ok);
            any_null_row |= !ok;
          }
        } else if (out.offsets.empty()) {
          fail("the first value continues a list (repetition level 1)");
        }
        if (d >= static_cast<uint32_t>(L.def_elem)) {
          ++elems;
          if (L.spec.element_nullable) {
            bool ok = d == static_cast<uint32_t>(L.max_def);
            out.elem_valid.push_back(ok);
            any_null_elem |= !ok;
          }
        } else if (rep[i] != 0) {
          fail("an empty or null list continues a row");
        }
      }
    } else if (L.spec.nullable) {
      for (int64_t i = 0; i < n; ++i) {
        bool ok = def[i] == 1;
        out.valid.push_back(ok);
        any_null_row |= !ok;
      }
      out.rows += static_cast<size_t>(n);
    } else {
      out.rows += static_cast<size_t>(n);
    }
    levels_read += n;

    // Values.
    size_t at = out.values.size();
    out.values.resize(at + present * width);
    uint8_t* dst = out.values.data() + at;
    const std::string vwhere = fail.where + ": values";
    switch (enc) {
      case Encoding::PLAIN:
        if (L.spec.type == Type::BOOLEAN) {
          plain_decode_bools(p, avail, present, dst, vwhere);
        } else {
          if (present * width > avail) fail("values run past the page");
          if (present) std::memcpy(dst, p, present * width);
        }
        break;
      case Encoding::RLE: {
        if (L.spec.type != Type::BOOLEAN) fail("RLE values in a non-BOOLEAN column");
        if (avail < 4) fail("RLE boolean length runs past the page");
        size_t len = load_u32(p);
        if (len > avail - 4) fail("RLE booleans run past the page");
        idx.resize(present);
        rle_hybrid_decode(p + 4, len, 1, present, idx.data(), vwhere);
        for (size_t i = 0; i < present; ++i) dst[i] = static_cast<uint8_t>(idx[i]);
        break;
      }
      case Encoding::PLAIN_DICTIONARY:
      case Encoding::RLE_DICTIONARY: {
        if (!have_dict) fail("dictionary-encoded page without a dictionary page");
        if (present == 0) break;
        if (avail < 1) fail("dictionary index bit width missing");
        int bw = p[0];
        if (bw > 32) fail("dictionary index bit width " + std::to_string(bw) + " is out of range");
        idx.resize(present);
        rle_hybrid_decode(p + 1, avail - 1, bw, present, idx.data(), vwhere);
        uint32_t hi = 0;
        for (size_t i = 0; i < present; ++i) hi = std::max(hi, idx[i]);
        if (hi >= dict_n)
          fail("dictionary index " + std::to_string(hi) + " beyond the " + std::to_string(dict_n) + " entries");
        const uint8_t* dv = dict.data();
        if (width == 4) {  // fixed-size copies compile to plain loads and stores
          for (size_t i = 0; i < present; ++i) std::memcpy(dst + i * 4, dv + static_cast<size_t>(idx[i]) * 4, 4);
        } else if (width == 8) {
          for (size_t i = 0; i < present; ++i) std::memcpy(dst + i * 8, dv + static_cast<size_t>(idx[i]) * 8, 8);
        } else {
          for (size_t i = 0; i < present; ++i)
            std::memcpy(dst + i * width, dict.data() + static_cast<size_t>(idx[i]) * width, width);
        }
        break;
      }
      case Encoding::BYTE_STREAM_SPLIT:
        if (L.spec.type == Type::BOOLEAN) fail("BYTE_STREAM_SPLIT on a BOOLEAN column");
        if (present * width > avail) fail("values run past the page");
        byte_stream_split_decode(p, present * width, present, width, dst, vwhere);
        break;
      case Encoding::DELTA_BINARY_PACKED:
        if (L.spec.type != Type::INT32 && L.spec.type != Type::INT64) fail("DELTA_BINARY_PACKED on a non-integer column");
        delta_binary_packed_decode(p, avail, present, width, dst, vwhere);
        break;
      default:
        fail(std::string("value encoding ") + encoding_name(enc) + " (" + std::to_string(static_cast<int>(enc)) +
             ") is not supported");
    }
  }

  if (L.spec.list) {
    out.offsets.push_back(elems);
    out.rows = out.offsets.size() - 1;
  }
  if (static_cast<int64_t>(out.rows) != rg.num_rows)
    throw Error(where + ": decoded " + std::to_string(out.rows) + " rows, the row group has " +
                    std::to_string(rg.num_rows),
                kHint);
  if (!any_null_row) out.valid.clear();
  if (!any_null_elem) out.elem_valid.clear();
}

}  // namespace bkd::parquet

#pragma once
// KD shards: one Parquet row per student token position (DESIGN.md §6, docs/FORMAT.md):
//   seq_id int64, pos int32, token_id int32, kd_valid boolean,
//   topk_ids list<int32>, topk_logprobs list<float>, other_logprob float
// plus file metadata (teacher, model, K, temperature, tokenizer hashes, schema version, created_at).
// KdShardWriter / KdShardReader sit on the generic Parquet writer and reader.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/parquet/reader.h"
#include "core/parquet/writer.h"

namespace bkd {
class Settings;

constexpr int kKdSchemaVersion = 1;

struct KdShardMeta {
  std::string teacher;                 // provider, e.g. "openai", "local"
  std::string model;                   // teacher model id
  int k = 0;                           // top-K asked of the teacher
  double temperature = 1.0;            // teacher temperature the log-probs were taken at
  std::string student_tokenizer_hash;  // sha256 of the student tokenizer files
  std::string teacher_tokenizer_hash;  // sha256 of the teacher tokenizer, when known
  std::string created_at;              // ISO 8601 UTC; the writer fills it when empty
  int schema_version = kKdSchemaVersion;
  std::map<std::string, std::string> extra;  // further keys, stored as "bkd.<key>"

  std::vector<parquet::KeyValue> to_key_values() const;
  static KdShardMeta from_key_values(const std::vector<parquet::KeyValue>& kv, const std::string& where);
};

struct KdRow {
  int64_t seq_id = 0;
  int32_t pos = 0;
  int32_t token_id = 0;
  bool kd_valid = false;
  std::vector<int32_t> topk_ids;
  std::vector<float> topk_logprobs;  // natural-log probabilities, same length as topk_ids
  float other_logprob = 0;           // log of the mass outside the top-K
};

std::vector<parquet::ColumnSpec> kd_columns();

struct KdWriterOptions {
  parquet::Codec codec = parquet::Codec::ZSTD;
  int zstd_level = 3;
  int64_t row_group_rows = 65536;
  bool byte_stream_split = false;  // BYTE_STREAM_SPLIT for the float columns (smaller with zstd)
  bool dictionary = true;          // dictionary-encode columns where that is smaller
  // PARQUET_ROW_GROUP_ROWS and PARQUET_COMPRESSION.
  static KdWriterOptions from_settings(const Settings& settings);
};

class KdShardWriter {
 public:
  KdShardWriter(const std::string& path, KdShardMeta meta, KdWriterOptions options = {});
  void append(int64_t seq_id, int32_t pos, int32_t token_id, bool kd_valid, const int32_t* topk_ids,
              const float* topk_logprobs, size_t k, float other_logprob);
  void append(const KdRow& row);
  void set_metadata(const std::string& key, const std::string& value) { writer_.set_metadata(key, value); }  // before close()
  void close();
  int64_t rows() const { return writer_.rows_written(); }

 private:
  parquet::ParquetWriter writer_;
};

// A row group's rows, column by column. Row r's candidates are [topk_offsets[r], topk_offsets[r+1]).
struct KdBatch {
  std::vector<int64_t> seq_id;
  std::vector<int32_t> pos, token_id;
  std::vector<uint8_t> kd_valid;
  std::vector<int64_t> topk_offsets;
  std::vector<int32_t> topk_ids;
  std::vector<float> topk_logprobs;
  std::vector<float> other_logprob;
  size_t rows() const { return seq_id.size(); }
  size_t k(size_t r) const { return static_cast<size_t>(topk_offsets[r + 1] - topk_offsets[r]); }
  KdRow row(size_t r) const;
};

class KdShardReader {
 public:
  explicit KdShardReader(const std::string& path);
  const KdShardMeta& meta() const { return meta_; }
  const parquet::ParquetReader& parquet() const { return reader_; }
  int64_t num_rows() const { return reader_.num_rows(); }
  // Fills `batch` with the next row group; false when all were read.
  bool next(KdBatch& batch);
  void rewind() { next_group_ = 0; }

 private:
  parquet::ParquetReader reader_;
  KdShardMeta meta_;
  int next_group_ = 0;
  int col_[7];
  parquet::RowGroupData group_;
};

// What `inspect` prints: counts and the teacher's probability mass, over rows with kd_valid.
struct KdShardStats {
  int64_t rows = 0, sequences = 0, valid_rows = 0;
  int32_t min_pos = 0, max_pos = 0;
  double invalid_rate = 0;
  double mean_other_mass = 0;    // mean exp(other_logprob)
  double mean_topk_coverage = 0; // mean sum exp(topk_logprobs)
  std::map<int64_t, int64_t> k_histogram;  // K -> rows (all rows)
};
KdShardStats compute_kd_stats(KdShardReader& reader);

}  // namespace bkd

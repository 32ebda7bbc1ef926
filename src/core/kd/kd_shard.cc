#include "core/kd/kd_shard.h"

#include <cmath>
#include <cstring>
#include <unordered_set>

#include "core/config/settings.h"
#include "core/util/error.h"
#include "core/util/sysinfo.h"

namespace bkd {

using parquet::ColumnSpec;
using parquet::Type;

namespace {
enum Col { kSeq, kPos, kTok, kValid, kIds, kLogprobs, kOther };
const char* kNames[7] = {"seq_id", "pos", "token_id", "kd_valid", "topk_ids", "topk_logprobs", "other_logprob"};

std::string fmt_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}
}  // namespace

std::vector<ColumnSpec> kd_columns() {
  return {{kNames[kSeq], Type::INT64},      {kNames[kPos], Type::INT32},          {kNames[kTok], Type::INT32},
          {kNames[kValid], Type::BOOLEAN},  {kNames[kIds], Type::INT32, true},    {kNames[kLogprobs], Type::FLOAT, true},
          {kNames[kOther], Type::FLOAT}};
}

std::vector<parquet::KeyValue> KdShardMeta::to_key_values() const {
  std::vector<parquet::KeyValue> kv = {
      {"bkd.schema_version", std::to_string(schema_version)},
      {"bkd.teacher", teacher},
      {"bkd.model", model},
      {"bkd.k", std::to_string(k)},
      {"bkd.temperature", fmt_double(temperature)},
      {"bkd.student_tokenizer_sha256", student_tokenizer_hash},
      {"bkd.teacher_tokenizer_sha256", teacher_tokenizer_hash},
      {"bkd.created_at", created_at.empty() ? iso8601_utc_now() : created_at},
  };
  for (const auto& [key, value] : extra) kv.push_back({"bkd." + key, value});
  return kv;
}

KdShardMeta KdShardMeta::from_key_values(const std::vector<parquet::KeyValue>& kvs, const std::string& where) {
  KdShardMeta m;
  m.schema_version = 0;
  for (const auto& kv : kvs) {
    if (kv.key.rfind("bkd.", 0) != 0) continue;
    std::string key = kv.key.substr(4);
    try {
      if (key == "schema_version") m.schema_version = std::stoi(kv.value);
      else if (key == "teacher") m.teacher = kv.value;
      else if (key == "model") m.model = kv.value;
      else if (key == "k") m.k = std::stoi(kv.value);
      else if (key == "temperature") m.temperature = std::stod(kv.value);
      else if (key == "student_tokenizer_sha256") m.student_tokenizer_hash = kv.value;
      else if (key == "teacher_tokenizer_sha256") m.teacher_tokenizer_hash = kv.value;
      else if (key == "created_at") m.created_at = kv.value;
      else m.extra[key] = kv.value;
    } catch (const std::exception&) {
      throw Error(where + ": metadata " + kv.key + " = '" + kv.value + "' is not a number", "re-create the shard");
    }
  }
  if (m.schema_version > kKdSchemaVersion)
    throw Error(where + ": KD schema version " + std::to_string(m.schema_version) + " is newer than this build's " +
                    std::to_string(kKdSchemaVersion),
                "update bitnet-kde");
  return m;
}

namespace {
parquet::WriterOptions writer_options(const KdShardMeta& meta, const KdWriterOptions& o) {
  parquet::WriterOptions w;
  w.codec = o.codec;
  w.zstd_level = o.zstd_level;
  w.row_group_rows = o.row_group_rows;
  w.byte_stream_split = o.byte_stream_split;
  w.dictionary = o.dictionary;
  w.metadata = meta.to_key_values();
  w.created_by = "bitnet-kde";
  return w;
}
}  // namespace

KdWriterOptions KdWriterOptions::from_settings(const Settings& settings) {
  KdWriterOptions o;
  o.row_group_rows = settings.i64("PARQUET_ROW_GROUP_ROWS");
  o.codec = parquet::parse_codec(settings.str("PARQUET_COMPRESSION"));
  return o;
}

KdShardWriter::KdShardWriter(const std::string& path, KdShardMeta meta, KdWriterOptions options)
    : writer_(path, kd_columns(), writer_options(meta, options)) {}

void KdShardWriter::append(int64_t seq_id, int32_t pos, int32_t token_id, bool kd_valid, const int32_t* topk_ids,
                           const float* topk_logprobs, size_t k, float other_logprob) {
  writer_.put_i64(kSeq, seq_id);
  writer_.put_i32(kPos, pos);
  writer_.put_i32(kTok, token_id);
  writer_.put_bool(kValid, kd_valid);
  writer_.put_list_i32(kIds, topk_ids, k);
  writer_.put_list_f32(kLogprobs, topk_logprobs, k);
  writer_.put_f32(kOther, other_logprob);
  writer_.end_row();
}

void KdShardWriter::append(const KdRow& r) {
  if (r.topk_ids.size() != r.topk_logprobs.size())
    throw Error("KD row seq " + std::to_string(r.seq_id) + " pos " + std::to_string(r.pos) + ": " +
                std::to_string(r.topk_ids.size()) + " ids but " + std::to_string(r.topk_logprobs.size()) + " log-probs");
  append(r.seq_id, r.pos, r.token_id, r.kd_valid, r.topk_ids.data(), r.topk_logprobs.data(), r.topk_ids.size(),
         r.other_logprob);
}

void KdShardWriter::close() { writer_.close(); }

KdRow KdBatch::row(size_t r) const {
  KdRow row;
  row.seq_id = seq_id[r], row.pos = pos[r], row.token_id = token_id[r], row.kd_valid = kd_valid[r] != 0;
  row.topk_ids.assign(topk_ids.begin() + topk_offsets[r], topk_ids.begin() + topk_offsets[r + 1]);
  row.topk_logprobs.assign(topk_logprobs.begin() + topk_offsets[r], topk_logprobs.begin() + topk_offsets[r + 1]);
  row.other_logprob = other_logprob[r];
  return row;
}

KdShardReader::KdShardReader(const std::string& path) : reader_(path) {
  const auto specs = kd_columns();
  for (int c = 0; c < 7; ++c) {
    col_[c] = reader_.column_index(kNames[c]);
    if (col_[c] < 0)
      throw Error(path + ": not a KD shard: no column '" + std::string(kNames[c]) + "'", "see docs/FORMAT.md for the schema");
    const auto& got = reader_.columns()[col_[c]].spec;
    if (got.type != specs[c].type || got.list != specs[c].list)
      throw Error(path + ": column '" + std::string(kNames[c]) + "' is " + (got.list ? "a list of " : "") +
                      parquet::type_name(got.type) + ", a KD shard needs " + (specs[c].list ? "a list of " : "") +
                      parquet::type_name(specs[c].type),
                  "see docs/FORMAT.md for the schema");
  }
  meta_ = KdShardMeta::from_key_values(reader_.metadata().key_value_metadata, path);
}

bool KdShardReader::next(KdBatch& b) {
  if (next_group_ >= reader_.num_row_groups()) return false;
  std::vector<int> wanted(col_, col_ + 7);
  const int g = next_group_++;
  reader_.read_row_group(g, group_, &wanted);
  const auto& cols = group_.columns;
  const size_t n = static_cast<size_t>(group_.rows);
  auto where = [&](int c) {
    return reader_.path() + ": row group " + std::to_string(g) + ", column '" + kNames[c] + "'";
  };
  for (int c = 0; c < 7; ++c) {
    const auto& cd = cols[col_[c]];
    if (!cd.valid.empty() || !cd.elem_valid.empty())
      throw Error(where(c) + ": holds nulls; KD shards have none", "re-create the shard without nulls");
  }
  auto copy = [&](int c, auto& dst) {
    using T = typename std::decay_t<decltype(dst)>::value_type;
    const auto& cd = cols[col_[c]];
    dst.resize(cd.values.size() / sizeof(T));
    if (!dst.empty()) std::memcpy(dst.data(), cd.values.data(), dst.size() * sizeof(T));
  };
  copy(kSeq, b.seq_id), copy(kPos, b.pos), copy(kTok, b.token_id), copy(kValid, b.kd_valid);
  copy(kIds, b.topk_ids), copy(kLogprobs, b.topk_logprobs), copy(kOther, b.other_logprob);
  const auto& ids_off = cols[col_[kIds]].offsets;
  const auto& lp_off = cols[col_[kLogprobs]].offsets;
  if (ids_off != lp_off) {
    size_t r = 0;
    while (r < ids_off.size() && r < lp_off.size() && ids_off[r] == lp_off[r]) ++r;
    throw Error(where(kIds) + ": row " + std::to_string(r == 0 ? 0 : r - 1) +
                    " has topk_ids and topk_logprobs of different lengths",
                "re-create the shard");
  }
  b.topk_offsets = ids_off;
  if (b.seq_id.size() != n) throw Error(where(kSeq) + ": row count mismatch");
  return true;
}

KdShardStats compute_kd_stats(KdShardReader& reader) {
  KdShardStats s;
  std::unordered_set<int64_t> seqs;
  double other = 0, coverage = 0;
  bool first = true;
  KdBatch b;
  reader.rewind();
  while (reader.next(b)) {
    for (size_t r = 0; r < b.rows(); ++r) {
      ++s.rows;
      seqs.insert(b.seq_id[r]);
      if (first) s.min_pos = s.max_pos = b.pos[r], first = false;
      s.min_pos = std::min(s.min_pos, b.pos[r]);
      s.max_pos = std::max(s.max_pos, b.pos[r]);
      ++s.k_histogram[static_cast<int64_t>(b.k(r))];
      if (!b.kd_valid[r]) continue;
      ++s.valid_rows;
      other += std::exp(static_cast<double>(b.other_logprob[r]));
      double mass = 0;
      for (int64_t i = b.topk_offsets[r]; i < b.topk_offsets[r + 1]; ++i) mass += std::exp(static_cast<double>(b.topk_logprobs[i]));
      coverage += mass;
    }
  }
  s.sequences = static_cast<int64_t>(seqs.size());
  if (s.rows) s.invalid_rate = 1.0 - static_cast<double>(s.valid_rows) / s.rows;
  if (s.valid_rows) s.mean_other_mass = other / s.valid_rows, s.mean_topk_coverage = coverage / s.valid_rows;
  return s;
}

}  // namespace bkd

// `inspect <shard>`: what a KD shard holds — schema, metadata, row groups, rows, sequences, token
// positions, invalid-row rate, mean Other mass, top-K coverage and the K histogram; --json for machines.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "core/kd/kd_shard.h"
#include "core/util/fs.h"

namespace bkd::cli {
namespace {

std::string column_type(const parquet::ColumnSpec& c) {
  std::string t = parquet::type_name(c.type);
  return c.list ? "list<" + t + ">" : t;
}

nlohmann::json inspect_json(const std::string& path) {
  KdShardReader rd(path);
  const auto& pq = rd.parquet();
  KdShardStats s = compute_kd_stats(rd);
  nlohmann::json j;
  j["path"] = path;
  j["file_bytes"] = pq.file_size();
  j["created_by"] = pq.metadata().created_by;
  nlohmann::json schema = nlohmann::json::array();
  for (size_t c = 0; c < pq.columns().size(); ++c) {
    const auto& col = pq.columns()[c];
    nlohmann::json e = {{"name", col.spec.name}, {"type", column_type(col.spec)}, {"nullable", col.spec.nullable}};
    if (pq.num_row_groups() > 0) {
      const auto& m = pq.metadata().row_groups[0].columns[c].meta;
      e["codec"] = parquet::codec_name(m.codec);
      nlohmann::json encs = nlohmann::json::array();
      for (auto enc : m.encodings) encs.push_back(parquet::encoding_name(enc));
      e["encodings"] = encs;
    }
    schema.push_back(e);
  }
  j["schema"] = schema;
  nlohmann::json meta = nlohmann::json::object();
  for (const auto& kv : pq.metadata().key_value_metadata) meta[kv.key] = kv.value;
  j["metadata"] = meta;
  j["row_groups"] = pq.num_row_groups();
  j["rows"] = s.rows;
  j["sequences"] = s.sequences;
  j["token_positions"] = s.rows;
  j["pos_min"] = s.min_pos;
  j["pos_max"] = s.max_pos;
  j["valid_rows"] = s.valid_rows;
  j["invalid_rate"] = s.invalid_rate;
  j["mean_other_mass"] = s.mean_other_mass;
  j["mean_topk_coverage"] = s.mean_topk_coverage;
  j["bytes_per_position"] = s.rows ? static_cast<double>(pq.file_size()) / s.rows : 0.0;
  nlohmann::json hist = nlohmann::json::object();
  for (const auto& [k, n] : s.k_histogram) hist[std::to_string(k)] = n;
  j["k_histogram"] = hist;
  return j;
}

void print_text(const nlohmann::json& j) {
  std::printf("shard:       %s (%llu bytes, %s)\n", j["path"].get<std::string>().c_str(),
              static_cast<unsigned long long>(j["file_bytes"].get<uint64_t>()), j["created_by"].get<std::string>().c_str());
  std::printf("schema:\n");
  for (const auto& c : j["schema"]) {
    std::string encs;
    if (c.contains("encodings"))
      for (const auto& e : c["encodings"]) encs += (encs.empty() ? "" : ",") + e.get<std::string>();
    std::printf("  %-16s %-14s %s %s\n", c["name"].get<std::string>().c_str(), c["type"].get<std::string>().c_str(),
                c.value("codec", "").c_str(), encs.c_str());
  }
  std::printf("metadata:\n");
  for (const auto& [k, v] : j["metadata"].items()) std::printf("  %-30s %s\n", k.c_str(), v.get<std::string>().c_str());
  std::printf("row groups:          %d\n", j["row_groups"].get<int>());
  std::printf("rows:                %lld\n", static_cast<long long>(j["rows"].get<int64_t>()));
  std::printf("sequences:           %lld\n", static_cast<long long>(j["sequences"].get<int64_t>()));
  std::printf("token positions:     %lld (pos %d..%d)\n", static_cast<long long>(j["token_positions"].get<int64_t>()),
              j["pos_min"].get<int>(), j["pos_max"].get<int>());
  std::printf("invalid rows:        %.4f%%\n", 100.0 * j["invalid_rate"].get<double>());
  std::printf("mean Other mass:     %.6f\n", j["mean_other_mass"].get<double>());
  std::printf("mean top-K coverage: %.6f\n", j["mean_topk_coverage"].get<double>());
  std::printf("bytes per position:  %.2f\n", j["bytes_per_position"].get<double>());
  std::printf("K histogram:\n");
  double rows = std::max<double>(1, static_cast<double>(j["rows"].get<int64_t>()));
  for (const auto& [k, n] : j["k_histogram"].items())
    std::printf("  K=%-4s %10lld  (%.2f%%)\n", k.c_str(), static_cast<long long>(n.get<int64_t>()), 100.0 * n.get<int64_t>() / rows);
}

void setup_inspect(CLI::App& app, Cli&) {
  auto* sub = app.add_subcommand("inspect", "describe a KD shard: schema, metadata, rows, coverage, K histogram");
  static std::string path;
  static bool json = false;
  sub->add_option("shard", path, "KD shard (.parquet)")->required();
  sub->add_flag("--json", json, "machine-readable output");
  sub->callback([] {
    nlohmann::json j = inspect_json(path);
    if (json) std::printf("%s\n", j.dump(2).c_str());
    else print_text(j);
  });
}

RegisterVerb reg_inspect("inspect", 100, setup_inspect);

}  // namespace
}  // namespace bkd::cli

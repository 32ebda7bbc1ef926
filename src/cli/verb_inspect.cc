// `inspect <shard>`: what a KD shard holds — schema, metadata, row groups, rows, sequences, token
// positions, why rows carry no KD (the row accounting collect stores in the shard: outside the KD range,
// no teacher boundary, invalid), mean Other mass, top-K coverage and the K histogram; --json for machines.
#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "cli/cli.h"
#include "core/kd/kd_accounting.h"
#include "core/kd/kd_shard.h"
#include "core/util/error.h"
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
  j["rows_without_kd"] = s.rows - s.valid_rows;
  j["no_kd_rate"] = s.invalid_rate;  // every kd_valid = false row, whatever the reason
  // Why rows carry no KD, as collect recorded it in the shard (one definition: core/kd/kd_accounting.h).
  if (auto counts = KdRowCounts::from_key_values(pq.metadata().key_value_metadata, path)) {
    if (counts->rows != s.rows || counts->kd != s.valid_rows)
      throw Error(path + ": the row accounting metadata says " + std::to_string(counts->rows) + " rows, " +
                      std::to_string(counts->kd) + " with KD; the shard holds " + std::to_string(s.rows) + " rows, " +
                      std::to_string(s.valid_rows) + " with kd_valid",
                  "the shard was altered after collect wrote it; re-create it");
    j["row_accounting"] = counts->to_json();
    j["row_accounting"]["source"] = "shard metadata";
    j["invalid_row_rate"] = counts->invalid_row_rate();
    j["no_teacher_boundary_rate"] = counts->no_teacher_boundary_rate();
    j["kd_fraction"] = counts->kd_fraction();
  } else {
    j["row_accounting"] = {{"source", "not recorded"}};
    j["invalid_row_rate"] = nullptr;  // unknown: the shard does not say why its rows lack KD
  }
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
  const double rows_d = std::max<double>(1, static_cast<double>(j["rows"].get<int64_t>()));
  std::printf("rows with KD:        %lld (%.2f%%)\n", static_cast<long long>(j["valid_rows"].get<int64_t>()),
              100.0 * j["valid_rows"].get<int64_t>() / rows_d);
  std::printf("rows without KD:     %lld (%.2f%%, kd_valid = false)\n",
              static_cast<long long>(j["rows_without_kd"].get<int64_t>()), 100.0 * j["no_kd_rate"].get<double>());
  const auto& acc = j["row_accounting"];
  if (acc["source"] == "shard metadata") {
    auto n = [&](const char* k) { return static_cast<long long>(acc[k].get<int64_t>()); };
    std::printf("  outside KD range:  %lld (first position of a scored sequence, prompt of a generated one)\n",
                n("rows_outside_range"));
    std::printf("  no teacher token:  %lld (no teacher token starts there: CE only, no KD signal)\n",
                n("rows_no_teacher_boundary"));
    std::printf("  invalid:           %lld (teacher failed: %lld without log-probs, %lld non-finite, %lld misaligned)\n",
                n("rows_invalid"), n("rows_no_logprobs"), n("rows_not_finite"), n("rows_misaligned"));
    std::printf("of the %lld rows in the KD range: KD %.4f%%, no teacher token %.4f%%, invalid-row rate %.4f%%\n",
                n("rows_in_range"), 100.0 * acc["kd_fraction"].get<double>(),
                100.0 * acc["no_teacher_boundary_rate"].get<double>(), 100.0 * acc["invalid_row_rate"].get<double>());
  } else {
    std::printf("  why:               not recorded in this shard (written before row accounting or by another\n"
                "                     tool); the invalid-row rate is unknown\n");
  }
  std::printf("mean Other mass:     %.6f\n", j["mean_other_mass"].get<double>());
  std::printf("mean top-K coverage: %.6f\n", j["mean_topk_coverage"].get<double>());
  std::printf("bytes per position:  %.2f\n", j["bytes_per_position"].get<double>());
  std::printf("K histogram:\n");
  for (const auto& [k, n] : j["k_histogram"].items())
    std::printf("  K=%-4s %10lld  (%.2f%%)\n", k.c_str(), static_cast<long long>(n.get<int64_t>()), 100.0 * n.get<int64_t>() / rows_d);
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

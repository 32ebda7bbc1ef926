// KD shard benchmark (not a test): write and read throughput (positions/s, one core) and bytes per
// position / per stored candidate at K=20, for our writer's variants and for DuckDB writing the same rows
// with zstd, in one run. Prints a table and writes JSON.
//
// Data: per position, 64 candidate logits c * N(0,1) (c ~ U(0.5, 4): sharp to flat distributions) over
// Zipf(1.1)-drawn token ids from a 50257 vocabulary, plus the rest of the vocabulary as a tail mass
// (V - 64) * exp(-3.5); stored values are the sorted top-20 log-softmax and log(1 - top-K mass).
// 1% of rows are invalid (kd_valid false, empty lists), as collection writes them. One variant rounds the
// log-probs to 1/256 nat to show what a lossy-but-readable shard costs per candidate.
//
// Usage: parquet_bench [--positions N] [--k K] [--json PATH] [--dir DIR] [--no-duckdb]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <map>
#include <random>
#include <unistd.h>
#include <string>
#include <vector>

#include "core/kd/kd_shard.h"
#include "core/util/fs.h"
#include "core/report/report.h"
#include "core/util/sysinfo.h"

using namespace bkd;

namespace {

struct Data {
  std::vector<KdRow> rows;
  int64_t candidates = 0;
};

Data make_data(int64_t n, int k) {
  const int V = 50257, C = 64;
  std::mt19937_64 rng(42);
  std::vector<double> cdf(V);
  double acc = 0;
  for (int i = 0; i < V; ++i) cdf[i] = acc += 1.0 / std::pow(i + 1.0, 1.1);
  for (auto& x : cdf) x /= acc;
  std::uniform_real_distribution<double> u01(0, 1);
  std::normal_distribution<double> normal(0, 1);
  auto zipf = [&] { return static_cast<int32_t>(std::lower_bound(cdf.begin(), cdf.end(), u01(rng)) - cdf.begin()); };
  Data d;
  d.rows.reserve(n);
  std::vector<std::pair<double, int32_t>> cand(C);
  std::vector<int32_t> used;
  const double tail = std::log(static_cast<double>(V - C)) - 3.5;
  for (int64_t i = 0; i < n; ++i) {
    KdRow r;
    r.seq_id = i / 512, r.pos = static_cast<int32_t>(i % 512), r.token_id = zipf();
    r.kd_valid = rng() % 100 != 0;
    if (r.kd_valid) {
      double c = 0.5 + 3.5 * u01(rng);
      used.clear();
      for (auto& [logit, id] : cand) {
        do id = zipf();
        while (std::find(used.begin(), used.end(), id) != used.end());
        used.push_back(id);
        logit = c * normal(rng);
      }
      std::sort(cand.begin(), cand.end(), [](auto& a, auto& b) { return a.first > b.first; });
      double mx = std::max(cand[0].first, tail), sum = std::exp(tail - mx);
      for (auto& [logit, id] : cand) sum += std::exp(logit - mx);
      double lse = mx + std::log(sum), mass = 0;
      for (int j = 0; j < k; ++j) {
        double lp = cand[j].first - lse;
        r.topk_ids.push_back(cand[j].second);
        r.topk_logprobs.push_back(static_cast<float>(lp));
        mass += std::exp(lp);
      }
      r.other_logprob = static_cast<float>(std::log(std::max(1e-30, 1.0 - mass)));
      d.candidates += k;
    }
    d.rows.push_back(std::move(r));
  }
  return d;
}

struct Result {
  std::string name;
  uint64_t bytes = 0;
  std::map<std::string, int64_t> column_bytes;  // compressed bytes per column
  double write_s = 0, read_s = 0;            // CPU seconds of this thread (the machine may be shared)
  double write_wall_s = 0, read_wall_s = 0;  // wall seconds
};

// CPU time of the calling thread: "one core" throughput even when other jobs load the machine.
double thread_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Times {
  double cpu, wall;
};

Times time_write(const std::string& path, const Data& d, const KdWriterOptions& opt) {
  Timer t;
  double c0 = thread_cpu_seconds();
  KdShardMeta meta;
  meta.teacher = "bench", meta.model = "synthetic", meta.k = 20;
  KdShardWriter w(path, meta, opt);
  for (const auto& r : d.rows) w.append(r);
  w.close();
  return {thread_cpu_seconds() - c0, t.seconds()};
}

Times time_read(const std::string& path, int64_t expect_rows) {
  Timer t;
  double c0 = thread_cpu_seconds();
  KdShardReader rd(path);
  KdBatch b;
  int64_t rows = 0;
  double sink = 0;
  while (rd.next(b)) {
    rows += static_cast<int64_t>(b.rows());
    sink += b.topk_logprobs.empty() ? 0 : b.topk_logprobs.back();
  }
  Times s{thread_cpu_seconds() - c0, t.seconds()};
  if (rows != expect_rows) std::fprintf(stderr, "read %lld rows, expected %lld\n", (long long)rows, (long long)expect_rows);
  if (sink == 12345.678) std::printf(" ");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n = 262144;
  int k = 20;
  bool duck = true;
  std::string json_path = "parquet_bench.json";
  std::string dir = (std::filesystem::temp_directory_path() / ("bkd_parquet_bench_" + std::to_string(::getpid()))).string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--positions") n = std::atoll(next().c_str());
    else if (a == "--k") k = std::atoi(next().c_str());
    else if (a == "--json") json_path = next();
    else if (a == "--dir") dir = next();
    else if (a == "--no-duckdb") duck = false;
    else {
      std::fprintf(stderr, "usage: parquet_bench [--positions N] [--k K] [--json PATH] [--dir DIR] [--no-duckdb]\n");
      return 2;
    }
  }
  ensure_dir(dir);
  std::printf("generating %lld positions at K=%d ...\n", (long long)n, k);
  Data d = make_data(n, k);
  Data rounded = d;
  for (auto& r : rounded.rows) {
    for (auto& x : r.topk_logprobs) x = std::round(x * 256.0f) / 256.0f;
    r.other_logprob = std::round(r.other_logprob * 256.0f) / 256.0f;
  }

  struct Variant {
    const char* name;
    parquet::Codec codec;
    int level;
    bool bss;
    bool dict = true;
    bool rounded = false;  // log-probs rounded to 1/256 nat: lossy, still plain floats any reader takes
  } variants[] = {
      {"ours zstd-3", parquet::Codec::ZSTD, 3, false},
      {"ours zstd-3 + byte_stream_split", parquet::Codec::ZSTD, 3, true},
      {"ours zstd-1 + byte_stream_split", parquet::Codec::ZSTD, 1, true},
      {"ours zstd-3 + bss, no dictionary", parquet::Codec::ZSTD, 3, true, false},
      {"ours zstd-3 + bss, lp to 1/256 nat", parquet::Codec::ZSTD, 3, true, true, true},
      {"ours snappy", parquet::Codec::SNAPPY, 0, false},
      {"ours uncompressed", parquet::Codec::UNCOMPRESSED, 0, false},
  };
  std::vector<Result> results;
  for (const auto& v : variants) {
    KdWriterOptions opt;
    opt.codec = v.codec, opt.zstd_level = v.level, opt.byte_stream_split = v.bss, opt.dictionary = v.dict;
    std::string path = dir + "/" + std::to_string(results.size()) + ".parquet";
    Result r{v.name};
    r.write_s = r.read_s = r.write_wall_s = r.read_wall_s = 1e30;
    for (int rep = 0; rep < 3; ++rep) {  // best of 3: the machine may be shared
      Times w = time_write(path, v.rounded ? rounded : d, opt), rd = time_read(path, n);
      r.write_s = std::min(r.write_s, w.cpu), r.write_wall_s = std::min(r.write_wall_s, w.wall);
      r.read_s = std::min(r.read_s, rd.cpu), r.read_wall_s = std::min(r.read_wall_s, rd.wall);
    }
    r.bytes = file_size(path);
    parquet::ParquetReader pr(path);
    for (const auto& rg : pr.metadata().row_groups)
      for (size_t c = 0; c < rg.columns.size(); ++c) r.column_bytes[pr.columns()[c].spec.name] += rg.columns[c].meta.total_compressed_size;
    results.push_back(r);
  }

  std::string duck_error;
  if (duck) {
    std::string tools = std::string(BKD_SOURCE_DIR) + "/tests/tools";
    std::string in = dir + "/6.parquet";  // ours, uncompressed
    std::string out = dir + "/duck.parquet", res = dir + "/duck.json";
    std::string cmd = "node '" + tools + "/duckdb_bench.js' '" + in + "' '" + out + "' zstd 65536 1 > '" + res + "' 2>&1";
    if (std::system(cmd.c_str()) == 0) {
      auto j = nlohmann::json::parse(read_file(res));
      Result r{"duckdb zstd (1 thread)"};
      r.bytes = j["bytes"].get<uint64_t>();
      r.write_s = j["write_cpu_s"].get<double>();
      r.write_wall_s = j["write_s"].get<double>();
      Times rd = time_read(out, n);  // our reader on DuckDB's file
      r.read_s = rd.cpu, r.read_wall_s = rd.wall;
      results.push_back(r);
    } else {
      duck_error = read_file(res);
      std::fprintf(stderr, "DuckDB comparison skipped: %s\n", duck_error.c_str());
    }
  }

  const Result* duck_r = nullptr;
  for (const auto& r : results)
    if (r.name.rfind("duckdb", 0) == 0) duck_r = &r;
  std::printf("\n%-34s %10s %7s %7s %12s %12s %12s %12s %9s\n", "variant", "bytes", "B/pos", "B/cand", "write pos/s",
              "read pos/s", "(wall) write", "(wall) read", "size/duck");
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : results) {
    double bpp = static_cast<double>(r.bytes) / n, bpc = static_cast<double>(r.bytes) / std::max<int64_t>(1, d.candidates);
    double ratio = duck_r ? static_cast<double>(r.bytes) / duck_r->bytes : 0;
    std::printf("%-34s %10llu %7.2f %7.3f %12.0f %12.0f %12.0f %12.0f %9.3f\n", r.name.c_str(), (unsigned long long)r.bytes,
                bpp, bpc, n / r.write_s, n / r.read_s, n / r.write_wall_s, n / r.read_wall_s, ratio);
    rows.push_back({{"variant", r.name}, {"bytes", r.bytes}, {"bytes_per_position", bpp}, {"bytes_per_candidate", bpc},
                    {"write_positions_per_cpu_s", n / r.write_s}, {"read_positions_per_cpu_s", n / r.read_s},
                    {"write_positions_per_wall_s", n / r.write_wall_s}, {"read_positions_per_wall_s", n / r.read_wall_s},
                    {"size_vs_duckdb", duck_r ? nlohmann::json(ratio) : nlohmann::json()},
                    {"column_bytes", r.column_bytes}});
  }
  std::printf("\nbytes per stored candidate by column:\n%-34s", "variant");
  for (const auto& [name, b] : results[0].column_bytes) std::printf(" %14s", name.c_str());
  std::printf("\n");
  for (const auto& r : results) {
    if (r.column_bytes.empty()) continue;
    std::printf("%-34s", r.name.c_str());
    for (const auto& [name, b] : r.column_bytes) std::printf(" %14.3f", static_cast<double>(b) / d.candidates);
    std::printf("\n");
  }
  std::printf("pos/s from thread CPU time (one core), best of 3; wall columns include fsync and machine load.\n"
              "duckdb row: write = DuckDB COPY with 1 thread (process CPU time); read = our reader on DuckDB's file\n");
  Report rep("parquet_bench", nullptr);
  rep.body() = {{"positions", n}, {"k", k}, {"candidates", d.candidates}, {"results", rows},
                {"duckdb_error", duck_error}};
  rep.write(json_path);
  std::printf("wrote %s\n", json_path.c_str());
  std::filesystem::remove_all(dir);
  return 0;
}

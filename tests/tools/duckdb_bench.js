// Benchmark helper (not a test): DuckDB re-writes a Parquet file with the given codec and row-group size,
// then scans the result; prints {"write_s", "write_cpu_s", "read_s", "bytes"} as JSON. Times exclude node start-up.
// Usage: node duckdb_bench.js <in.parquet> <out.parquet> <codec> <row_group_size> <threads>
'use strict';
const fs = require('fs');
const { DuckDBInstance } = require('@duckdb/node-api');

async function main() {
  const [input, output, codec, rowGroup, threads] = process.argv.slice(2);
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  await conn.run(`SET threads = ${Number(threads)}`);
  // Load first so the write time measures encoding + compression only.
  await conn.run(`CREATE TABLE t AS SELECT * FROM read_parquet('${input}')`);
  let t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  await conn.run(`COPY t TO '${output}' (FORMAT parquet, COMPRESSION ${codec}, ROW_GROUP_SIZE ${Number(rowGroup)})`);
  const writeS = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const writeCpuS = (cpu.user + cpu.system) / 1e6;
  t0 = process.hrtime.bigint();
  await conn.runAndReadAll(`SELECT count(*), sum(seq_id), sum(pos), sum(token_id), count_if(kd_valid), ` +
    `sum(len(topk_ids)), sum(list_sum(topk_ids)), sum(list_sum(topk_logprobs)), sum(other_logprob) FROM read_parquet('${output}')`);
  const readS = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify({ write_s: writeS, write_cpu_s: writeCpuS, read_s: readS, bytes: fs.statSync(output).size }));
}

main().catch((e) => {
  console.error(String(e && e.stack ? e.stack : e));
  process.exit(1);
});

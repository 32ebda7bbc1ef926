// Runs SQL statements in an in-memory DuckDB and writes the last statement's rows, one JSON array per
// line, with every number as a string that round-trips exactly ("-0", "nan", "inf", BigInt digits).
// The Parquet interop tests use it as an independent reader and writer.
// Usage: node duckdb_run.js <statements.sql: one statement per line> <rows.jsonl>
'use strict';
const fs = require('fs');
const { DuckDBInstance } = require('@duckdb/node-api');

function canon(v) {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'nan';
    if (v === Infinity) return 'inf';
    if (v === -Infinity) return '-inf';
    if (Object.is(v, -0)) return '-0';
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (Array.isArray(v)) return v.map(canon);
  if (typeof v === 'object' && Array.isArray(v.items)) return v.items.map(canon);
  return String(v);
}

async function main() {
  const [sqlFile, outFile] = process.argv.slice(2);
  const statements = fs.readFileSync(sqlFile, 'utf8').split('\n').filter((s) => s.trim().length > 0);
  const instance = await DuckDBInstance.create(':memory:');
  const conn = await instance.connect();
  let reader = null;
  for (const s of statements) reader = await conn.runAndReadAll(s);
  const lines = [];
  if (reader) for (const row of reader.getRowsJS()) lines.push(JSON.stringify(row.map(canon)));
  fs.writeFileSync(outFile, lines.join('\n') + (lines.length ? '\n' : ''));
}

main().catch((e) => {
  console.error(String(e && e.stack ? e.stack : e));
  process.exit(1);
});

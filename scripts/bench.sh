#!/usr/bin/env bash
# Runs every benchmark program (built by `make build`) and collects their JSON under REPORTS_DIR/bench.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
out="${BENCH_OUT:-runs/bench}"
mkdir -p "$out"
for b in "$BUILD_DIR"/bin/*_bench; do
  [ -x "$b" ] || continue
  name=$(basename "$b")
  echo "== $name"
  "$b" --benchmark_out="$out/$name.json" --benchmark_out_format=json
done

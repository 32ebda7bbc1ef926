#!/usr/bin/env bash
# Paired A/B of two builds of one Google Benchmark program (a saved baseline binary against the
# current one): the two alternate N times (default 8), so both see the same machine from minute to
# minute, and each pair gives a ratio (baseline time / new time). Prints per benchmark the medians,
# ranges and the median ratio; writes every pair to pairs.json.
#
# usage: scripts/bench_pair.sh BASELINE_BIN NEW_BIN [FILTER]      (FILTER: --benchmark_filter regex)
#   e.g. scripts/bench_pair.sh /tmp/base/bin/engine_decode_bench build/bin/engine_decode_bench decode
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BASELINE_BIN NEW_BIN [FILTER]" >&2; exit 2; }
base=$1 new=$2 filter=${3:-.} n=${N:-8}
for b in "$base" "$new"; do [ -x "$b" ] || { echo "$0: $b is not an executable" >&2; exit 2; }; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$n"); do
  for side in base new; do
    bin=$base
    [ "$side" = new ] && bin=$new
    "$bin" --benchmark_filter="$filter" --benchmark_min_time=0.3 --benchmark_out="$tmp/$side.$i.json" \
      --benchmark_out_format=json > /dev/null 2>&1
  done
done
python3 - "$tmp" "$n" <<'PY'
import json, statistics as st, sys
tmp, n = sys.argv[1], int(sys.argv[2])
def times(side, i):
    return {b["name"]: b["real_time"] for b in json.load(open(f"{tmp}/{side}.{i}.json"))["benchmarks"]}
pairs = [(times("base", i), times("new", i)) for i in range(1, n + 1)]
out = {}
for name in pairs[0][0]:
    base = [p[0][name] for p in pairs]; new = [p[1][name] for p in pairs]
    ratio = [b / w for b, w in zip(base, new)]
    out[name] = {"baseline": base, "new": new, "baseline_over_new": ratio}
    print(f"{name:55s} baseline {st.median(base):9.1f} [{min(base):.1f}..{max(base):.1f}]  "
          f"new {st.median(new):9.1f} [{min(new):.1f}..{max(new):.1f}]  "
          f"ratio {st.median(ratio):.2f} [{min(ratio):.2f}..{max(ratio):.2f}] ({n} pairs)")
json.dump(out, open("pairs.json", "w"), indent=1)
PY

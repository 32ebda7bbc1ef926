#!/usr/bin/env bash
# Turns the backtrace of a bitnet-kde crash report into function names and source lines.
# usage: scripts/symbolize_crash.sh < crash.txt    (or: bitnet-kde ... 2>&1 | scripts/symbolize_crash.sh)
# Run it in the folder the crashed program ran in: frames name modules by the path it was started with.
# A frame "MODULE(+0xOFFSET)[0xADDRESS]" becomes "MODULE: function at file:line" (addr2line, binutils);
# frames that already carry a symbol, "MODULE(symbol+0xOFFSET)", are printed as they are.
set -uo pipefail
command -v addr2line >/dev/null || { echo "symbolize_crash: addr2line not found (apt-get install binutils)" >&2; exit 2; }
frames=0
while IFS= read -r line; do
  if [[ $line =~ ^([^\ \(]+)\(\+(0x[0-9a-f]+)\)\[ ]]; then
    module=${BASH_REMATCH[1]} offset=${BASH_REMATCH[2]}
    where=$(addr2line -Cfpe "$module" "$offset" 2>/dev/null | head -1)
    echo "$(basename "$module"): ${where:-?}"
    frames=$((frames + 1))
  elif [[ $line =~ ^[^\ \(]+\([^+\)][^\)]*\)\[0x ]]; then
    echo "$line"
    frames=$((frames + 1))
  fi
done
[ "$frames" -gt 0 ] || { echo "symbolize_crash: no backtrace frames in the input" >&2; exit 1; }

#!/usr/bin/env bash
# ctest notebook.quickstart (label "notebook"): runs notebooks/quickstart.ipynb headless on CPU with
# the tiny preset, the Drive mount skipped and a fresh DRIVE_ROOT, reusing the suite's build of the CLI.
# A whole tiny pipeline takes minutes, so it is skipped (exit 77) unless BKD_NOTEBOOK_TEST=1;
# CI runs it: cd build && BKD_NOTEBOOK_TEST=1 ctest -L notebook --output-on-failure
# Usage: notebook_test.sh SOURCE_DIR BUILD_DIR WORK_DIR
set -euo pipefail
src=$1 build=$2 work=$3
if [ "${BKD_NOTEBOOK_TEST:-0}" != 1 ]; then
  echo "skipped: set BKD_NOTEBOOK_TEST=1 to execute the quickstart notebook (a tiny pipeline run, minutes)"
  exit 77
fi
py=""
for cand in python3 /usr/bin/python3; do
  if command -v "$cand" >/dev/null && "$cand" -c "import nbclient, ipykernel" 2>/dev/null; then py=$cand; break; fi
done
if [ -z "$py" ]; then
  echo "error: no python3 with nbclient and ipykernel; install them with: bash scripts/setup.sh --test-tools" >&2
  exit 1
fi
rm -rf "$work" && mkdir -p "$work"
env SKIP_DRIVE=1 PRESET=tiny DRIVE_ROOT="$work/drive" BKD_REPO="$src" BKD_BUILD_DIR="$build" BKD_REUSE_BUILD=1 \
  "$py" "$src/tests/tools/run_notebook.py" "$src/notebooks/quickstart.ipynb" \
  --out "$work/quickstart.out.ipynb" --cwd "$src" --timeout 1200

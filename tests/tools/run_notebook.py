#!/usr/bin/env python3
"""Executes a notebook headless with nbclient in a real IPython kernel, the way Colab would run it:
cells in order, in one kernel. Saves the executed copy (outputs included) and exits 1 when any cell
raises. Needs Debian's python3-nbclient and python3-ipykernel (scripts/setup.sh --test-tools).

  run_notebook.py NOTEBOOK --out EXECUTED.ipynb [--cwd DIR] [--timeout SECONDS_PER_CELL]
"""
import argparse
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("notebook")
    ap.add_argument("--out", required=True)
    ap.add_argument("--cwd", default=".")
    ap.add_argument("--timeout", type=int, default=1200)
    args = ap.parse_args()

    nb = nbformat.read(args.notebook, as_version=4)
    nbformat.validate(nb)
    client = NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                            resources={"metadata": {"path": args.cwd}})
    t0 = time.time()
    failed = None
    try:
        client.execute()
    except CellExecutionError as e:
        failed = e
    finally:
        nbformat.write(nb, args.out)

    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        first = (cell.source.splitlines() or [""])[0]
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        state = "error" if errors else ("ran" if cell.get("execution_count") else "not run")
        print(f"cell {i:2d} [{state:7s}] {first[:70]}")
    print(f"executed copy: {args.out} ({time.time() - t0:.0f} s)")
    if failed is not None:
        print(f"notebook failed:\n{failed}", file=sys.stderr)
        return 1
    not_run = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and not c.get("execution_count")]
    if not_run:
        print(f"cells not executed: {not_run}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python
"""Run benchmarks: `bench/run.py [NAME|all] [options for NAME]` (`make bench BENCH_ARGS="admin_changelist --reload"`).

Each benchmark is a module beside this file with `main(argv) -> int`; add it to BENCHMARKS.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = {
    "admin_changelist": "bench.admin_changelist",
    "migrate_legacy": "bench.migrate_legacy",
    "api": "bench.api_bench",
    "reconcile": "bench.reconcile",
}


def main(argv: list[str]) -> int:
    name, *rest = argv or ["all"]
    if name in ("-h", "--help"):
        print(__doc__.strip() + "\n\nBenchmarks: " + ", ".join(BENCHMARKS) + ", all")
        return 0
    if name == "all":
        names = list(BENCHMARKS)
    elif name in BENCHMARKS:
        names = [name]
    else:
        print(f"Unknown benchmark {name!r}; choose one of: {', '.join(BENCHMARKS)}, all", file=sys.stderr)
        return 2
    failures = 0
    for benchmark in names:
        print(f"== {benchmark}", flush=True)
        module = importlib.import_module(BENCHMARKS[benchmark])
        failures += bool(module.main(rest))
    return 1 if failures else 0


if __name__ == "__main__":
    # Run as a script: make the project importable (sys.path[0] is bench/ itself).
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))

"""Benchmark: the HTML report of a paper-sized synthetic store (what every `run` ends with).

Builds (untimed) a synthetic store of the full paper grid (every sweep of sweeps.yaml but the
closed-loop `policies`, under the `paper` profile, 20 % of p-gamma left pending), then times
`make_report`: status and plan of every sweep, Figures 1-5 and the Pareto view as SVG, every
table, each cell's manifest. Prints one JSON object and one summary line. No goal is asserted
here; the number says what a `run` adds at its end.

    .venv/bin/python benchmarks/bench_report.py [--seeds 5] [--store DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per cell (paper: 5)")
    parser.add_argument("--store", type=Path, help="reuse/keep the store here")
    parser.add_argument("--keep", action="store_true", help="keep the store and the report")
    parser.add_argument("--sweeps-file", type=Path, default=REPO / "sweeps.yaml")
    args = parser.parse_args()

    from rstsweep.sweeper.report import make_report
    from rstsweep.sweeps import load_sweeps
    from rstsweep.testing.synthetic import grid_cells, write_synthetic_store

    work = Path(tempfile.mkdtemp(prefix="bench-report-"))
    store = args.store or work / "store"
    if not (store / "trials").is_dir():
        spec = load_sweeps(args.sweeps_file)
        paper = spec.profiles["paper"].model_dump() | {"seeds": list(range(args.seeds))}
        # closed-loop policy cells have no synthetic coins (their draws depend on the run)
        names = [name for name in spec.sweeps if name != "policies"]
        cells = grid_cells(spec, "paper", names, profile_spec=paper)
        write_synthetic_store(store, cells, unfinished={"p-gamma": 0.2}, profile="paper")
    wall, cpu = time.perf_counter(), time.process_time()
    path = make_report(store, work / "report.html", args.sweeps_file)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    size = Path(path).stat().st_size
    print(json.dumps({"store": str(store), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                      "html_bytes": size}))  # fmt: skip
    print(f"report of a paper-sized store: {wall:.1f} s wall, {size / 2**20:.1f} MiB of HTML")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

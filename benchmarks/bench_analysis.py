"""Benchmark: regenerate every figure and table from a paper-sized synthetic store.

Builds (untimed for the goal) a synthetic store of the full paper grid — every sweep of
sweeps.yaml under the `paper` profile: ResNet-18/WRN-28-10 (and the sweeps' own models) ×
CIFAR-10/100 × 5 seeds × 200 epochs, about half a million epoch rows, with 20 % of the p-gamma
sweep left pending, policy cells with the signals and draws a policy makes from them — written
in bulk (one part file per table: the layout a run leaves after its end-of-run compaction;
the bulk-layout baseline of `bench_store.py`, which writes cell by cell as a run does) —
then times `make_figures` (PNG) and `make_tables` (md, csv, latex), each
reading the store afresh as the CLI commands do. Prints one JSON object and one summary line.
Goal: ≤ 10 s for all figures and tables on this 2-core machine.

    .venv/bin/python benchmarks/bench_analysis.py [--seeds 5] [--store DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 10.0


def _timed(fn, *args, **kwargs):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds per cell (paper: 5)")
    parser.add_argument("--store", type=Path, help="reuse/keep the store here")
    parser.add_argument("--keep", action="store_true", help="keep the store and the outputs")
    parser.add_argument("--sweeps-file", type=Path, default=REPO / "sweeps.yaml")
    args = parser.parse_args()

    t_import = time.perf_counter()
    from rstsweep.analysis.figures import make_figures
    from rstsweep.analysis.tables import make_tables
    from rstsweep.sweeps import load_sweeps
    from rstsweep.testing.synthetic import grid_cells, write_synthetic_store

    import_s = time.perf_counter() - t_import

    work = Path(tempfile.mkdtemp(prefix="bench-analysis-"))
    store = args.store or work / "store"
    built = None
    build_s = 0.0
    if not (store / "trials").is_dir():
        spec = load_sweeps(args.sweeps_file)
        paper = spec.profiles["paper"].model_dump() | {"seeds": list(range(args.seeds))}
        cells = grid_cells(spec, "paper", profile_spec=paper)
        built, build_s, _ = _timed(write_synthetic_store, store, cells, unfinished={"p-gamma": 0.2})

    notes: list[str] = []
    figs, fig_wall, fig_cpu = _timed(make_figures, store, work / "figures", "png", notes.append)
    table_times = {}
    n_tables = 0
    for fmt in ("md", "csv", "latex"):
        tables, wall, cpu = _timed(make_tables, store, fmt)
        table_times[fmt] = {"wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}
        n_tables = len(tables)
    total_wall = fig_wall + sum(t["wall_s"] for t in table_times.values())
    total_cpu = fig_cpu + sum(t["cpu_s"] for t in table_times.values())
    counts = built or _row_counts(store)
    report = {
        "store": str(store),
        "rows": counts,
        "build_s": round(build_s, 2),
        "import_s": round(import_s, 3),
        "figures": {"n": len(figs), "wall_s": round(fig_wall, 3), "cpu_s": round(fig_cpu, 3)},
        "tables": {"n": n_tables, **table_times},
        "total_wall_s": round(total_wall, 3),
        "total_cpu_s": round(total_cpu, 3),
        "goal_s": GOAL_S,
        "notes": notes,
    }
    print(json.dumps(report, indent=2))
    verdict = "OK" if total_wall <= GOAL_S else f"SLOWER than the {GOAL_S:.0f} s goal"
    trials, epochs = counts.get("trials", "?"), counts.get("epochs", "?")
    print(
        f"bench_analysis: {trials} trials, {epochs} epoch rows"
        f" -> {len(figs)} figures + {n_tables} tables x 3 formats in {total_wall:.2f} s wall "
        f"({total_cpu:.2f} s CPU; + {import_s:.2f} s imports): {verdict}"
    )
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept: {work}", file=sys.stderr)
    return 0


def _row_counts(store: Path) -> dict[str, int]:
    """Rows per table of an existing store, from the Parquet footers (no data read)."""
    import pyarrow.parquet as pq

    return {
        table.name: sum(pq.ParquetFile(f).metadata.num_rows for f in table.glob("part-*.parquet"))
        for table in sorted(store.iterdir())
        if table.is_dir()
    }


if __name__ == "__main__":
    sys.exit(main())

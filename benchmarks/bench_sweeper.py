"""Sweep orchestration cost (issue 4), measured through the real driver: prints JSON, then one line.

A sweep of N equal cells, each a fixed-duration busy-work compute cell (a CPU spin split into
epochs, with the same epoch checkpoints and Tune reports as a real cell, but no torch), runs
through `rstsweep.sweeper.driver.run_sweep` on a fresh local Ray, once per cell duration asked
for, and reports side by side:

- overhead per cell = (driver wall − Σ cell compute / slots) / cells, where "cell compute" is the
  time each cell spent inside its training function and `slots` the trials that fit at once
  (goal ≤ 0.5 s with actor reuse). Reported with the driver wall of the whole `run_sweep` call
  (Ray start and stop included: what a user waits for) and of the Tune experiment alone.
  Also: the steady-state overhead per cell (first trial start to last result, from the driver's
  event log), and the fixed costs it excludes (Ray start/stop, time to the first trial).
- slot efficiency = Σ cell compute / (wall × slots) (goal ≥ 0.90 for ~60 s cells).

    .venv/bin/python benchmarks/bench_sweeper.py                         # 8 cells of 5 s
    .venv/bin/python benchmarks/bench_sweeper.py --cell-seconds 5 60 --cells 8 4
    .venv/bin/python benchmarks/bench_sweeper.py --json out.json

The cells spin the CPU; on a machine shared with other work they are slowed down, never shortened
(each cell spins until its wall-clock budget is used), so the numbers stay comparable.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import sys
import tempfile
from pathlib import Path

from rstsweep.core.config import CellConfig
from rstsweep.store.store import Store
from rstsweep.sweeper.driver import run_sweep
from rstsweep.sweeper.live import read_events
from rstsweep.sweeper.options import RunOptions
from rstsweep.sweeps import Cell
from rstsweep.testing.standin import standin_train

EPOCHS = 5


def busy_cell(config, out_dir, resume=False, on_epoch=None, *, seconds: float = 5.0):
    """A cell that computes for `seconds` of wall time in EPOCHS epochs, checkpointing each epoch
    and resuming after the last checkpoint (the project's stand-in trainer, spinning the CPU)."""
    return standin_train(
        config, out_dir, resume, on_epoch, epoch_s=seconds / config.epochs, busy=True
    )


def make_cells(n: int, tag: str) -> list[Cell]:
    cells = []
    for i in range(n):
        config = CellConfig(algorithm="sgd", epochs=EPOCHS, seed=i, label_smoothing=0.0)
        cells.append(Cell(f"bench-{tag}", "busy", f"seed={i}", float(i), config, config.cell_id()))
    return cells


def measure(cells: int, seconds: float, cpus_per_trial: float, num_cpus: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="bench-sweeper-"))
    try:
        store = Store(root / "store")
        summary = run_sweep(
            make_cells(cells, f"{seconds:g}s"),
            store,
            RunOptions(
                profile="bench", cpus_per_trial=cpus_per_trial, num_cpus=num_cpus, progress=False
            ),
            train_fn=functools.partial(busy_cell, seconds=seconds),
        )
        trials = store.read("trials")
        events = read_events(summary.run_dir / "events.jsonl")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert summary.done == cells and len(trials) == cells, summary.line()
    slots = min(cells, math.floor(num_cpus / cpus_per_trial + 1e-9))
    compute = float(trials["train_time_s"].sum())
    ideal = compute / slots
    # From the driver's event log: first trial start after the experiment began, last result
    # before it ended; in between is the steady state, where actor reuse matters.
    t_run = next(e["t"] for e in events if e["event"] == "run")
    t_end = next(e["t"] for e in events if e["event"] == "end")
    first = min(e["t"] for e in events if e["event"] == "start")
    last = max(e["t"] for e in events if e["event"] == "done")
    steady = (last - first - ideal) / cells
    return {
        "cells": cells,
        "cell_seconds": seconds,
        "slots": slots,
        "sum_compute_s": round(compute, 2),
        "wall_s": round(summary.wall_s, 2),
        "fit_s": round(summary.fit_s, 2),
        "overhead_per_cell_s": round((summary.wall_s - ideal) / cells, 3),
        "overhead_per_cell_fit_s": round((summary.fit_s - ideal) / cells, 3),
        "steady_overhead_per_cell_s": round(steady, 3),
        "fixed_s": {
            "ray_start_stop": round(summary.wall_s - summary.fit_s, 2),
            "to_first_trial": round(first - t_run, 2),
            "after_last_trial": round(t_end - last, 2),
        },
        "slot_efficiency": round(compute / (summary.wall_s * slots), 3),
        "slot_efficiency_fit": round(compute / (summary.fit_s * slots), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell-seconds", type=float, nargs="+", default=[5.0])
    parser.add_argument("--cells", type=int, nargs="+", default=[8], help="one per duration")
    parser.add_argument("--cpus-per-trial", type=float, default=1.0)
    parser.add_argument("--num-cpus", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    counts = args.cells * len(args.cell_seconds) if len(args.cells) == 1 else args.cells
    if len(counts) != len(args.cell_seconds):
        parser.error("--cells: give one count, or one per --cell-seconds value")
    runs = [
        measure(n, s, args.cpus_per_trial, args.num_cpus)
        for n, s in zip(counts, args.cell_seconds, strict=True)
    ]
    report = {
        "benchmark": "sweeper",
        "goals": {"overhead_per_cell_s": 0.5, "slot_efficiency_60s_cells": 0.90},
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "runs": runs,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    line = " | ".join(
        f"{r['cells']}x{r['cell_seconds']:g}s cells on {r['slots']} slots: overhead/cell "
        f"{r['overhead_per_cell_s']:.2f} s (steady state {r['steady_overhead_per_cell_s']:.2f} s), "
        f"slot efficiency {r['slot_efficiency']:.3f} ({r['slot_efficiency_fit']:.3f})"
        for r in runs
    )
    print(f"bench_sweeper: {line}", file=sys.stderr)


if __name__ == "__main__":
    main()

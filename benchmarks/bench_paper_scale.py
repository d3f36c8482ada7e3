"""The whole paper grid through the real driver on a simulated GPU cluster: prints JSON, then one
line.

Every cell of every sweep of `sweeps.yaml` under the `paper` profile (policies and late-sam
included; ~2,700 unique cells) runs through `rstsweep.sweeper.driver.run_sweep` on a local Ray that
declares logical GPUs (`--gpus 8 --gpus-per-trial 0.25`: 32 slots). Each cell is the project's
stand-in trainer (`rstsweep.testing.standin`: no torch) that sleeps its `plan` estimate scaled down
(`--hour-s 1`: one GPU-hour of estimated training -> 1 s), checkpointing every epoch, and its
result goes to a real store through the real Tune callback and writer. The plan's estimates come
from step-cost probes written into the store first (assumed GPU step times, `STEP_S` below: the
same path `rstsweep plan` takes for settings never run), so the driver's longest-first order and
the sleeps are the plan's numbers.

Three driver processes, each with its own store and Ray: YAML order (the launch order before
longest-first, patched in), longest first (what `run` does), and longest first SIGKILLed (the
driver's whole process group) once about half the cells are stored, then rerun to the end; the
raw Parquet part files (pyarrow, not the store's deduplicating reader) must then hold exactly one
trials row per cell and one epochs row per (cell, epoch). Reported per run: cells, slots, driver
overhead per cell (steady: first trial start to last result; all-in: the whole `run_sweep`, Ray
start and stop included) = (time - Σ cell compute / slots) / cells, driver peak RSS, makespan vs
its lower bound max(longest cell, Σ cells / slots), slot efficiency Σ compute / (makespan × slots).

    .venv/bin/python benchmarks/bench_paper_scale.py               # the whole grid (~15 min)
    .venv/bin/python benchmarks/bench_paper_scale.py --cells 300   # sized down
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from rstsweep.store.files import utc_now
from rstsweep.store.store import Store
from rstsweep.sweeper import driver
from rstsweep.sweeper.estimates import KEY, setting
from rstsweep.sweeper.live import read_events
from rstsweep.sweeper.options import RunOptions
from rstsweep.sweeper.plan import make_plan
from rstsweep.sweeps import expand, load_sweeps
from rstsweep.testing.standin import standin_train

ROOT = Path(__file__).resolve().parents[1]
# Assumed seconds per base (SGD) step at batch 256 on one A100-class GPU, bf16; a sharpness-aware
# step costs two. Stand-in probes, not measurements: they only set the relative cell costs.
STEP_S = {
    ("resnet18", "cifar"): 0.030,
    ("vgg16-bn", "cifar"): 0.030,
    ("wrn-28-10", "cifar"): 0.150,
    ("vit-s16", "cifar"): 0.060,
    ("resnet50", "imagenet"): 0.300,
    ("resnet101", "imagenet"): 0.500,
}


def paper_cells(n: int | None) -> list:
    """The unique cells of every sweep under `paper`, in sweeps-file order; `n`: every k-th."""
    sweeps = load_sweeps(ROOT / "sweeps.yaml")
    cells = list(
        driver.unique_cells(c for s in sweeps.sweeps for c in expand(sweeps, s, "paper")).values()
    )
    if n and n < len(cells):
        cells = [cells[i * len(cells) // n] for i in range(n)]
    return cells


def step_s(config) -> float:
    family = "imagenet" if config.dataset.startswith("imagenet") else "cifar"
    return STEP_S.get((config.model, family), 0.05)


def write_probes(store: Store, cells: list) -> None:
    rows, seen = [], set()
    for cell in cells:
        key = setting(cell.config, "cuda")
        if key in seen:
            continue
        seen.add(key)
        base = step_s(cell.config)
        rows.append(
            {
                **dict(zip(KEY, key, strict=True)),
                "sgd_step_s": base,
                "sa_step_s": 2 * base,
                "peak_memory_bytes": None,
                "steps": 5,
                "probed_at": utc_now(),
            }
        )
    store.write_probes(rows)


def estimates(cells: list, store: Store) -> dict[str, float]:
    """cell_id -> the plan's estimated training seconds on the trials' device."""
    plan = make_plan(cells, "paper", "paper", store, device="cuda")
    return {cid: e.seconds for cid, e in plan.pending.items()}


def paced(config, out_dir, resume=False, on_epoch=None, *, seconds: dict[str, float]):
    """The stand-in, sleeping this cell's scaled estimate over its epochs."""
    epoch_s = seconds[config.cell_id()] / config.epochs
    return standin_train(config, out_dir, resume, on_epoch, epoch_s=epoch_s)


# ------------------------------------------------------------------------------ one driver run


def child(args: argparse.Namespace) -> None:
    """One driver process: run the cells into `args.store`, print its measurements as JSON."""
    cells = paper_cells(args.cells)
    store = Store(args.store)
    seconds = {cid: s * args.hour_s / 3600 for cid, s in estimates(cells, store).items()}
    if args.order == "yaml":  # the launch order before longest-first: the sweeps file's
        driver.launch_order = lambda cells, store, o, todo: [
            cid for cid in driver.unique_cells(cells) if cid in todo
        ]
    options = RunOptions(
        sweep="paper-grid",
        profile="paper",
        cpus_per_trial=args.num_cpus / args.slots,
        gpus_per_trial=args.gpus / args.slots,
        num_cpus=args.num_cpus,
        num_gpus=args.gpus,
        progress=False,
        log_every_s=3600,
        trackers=(),
        probe=False,
        report_every_s=args.report_every_s,
    )
    summary = driver.run_sweep(
        cells, store, options, train_fn=functools.partial(paced, seconds=seconds)
    )
    events = read_events(summary.run_dir / "events.jsonl") if summary.run_dir else []
    starts = [e["t"] for e in events if e["event"] == "start"]
    ends = [e["t"] for e in events if e["event"] == "done"]
    compute = sum(seconds[cid] for cid in {e["cell_id"] for e in events if e["event"] == "done"})
    out = {
        "order": args.order,
        "cells": summary.cells,
        "done": summary.done,
        "skipped": summary.skipped,
        "failed": summary.failed,
        "wall_s": round(summary.wall_s, 2),
        "fit_s": round(summary.fit_s, 2),
        "makespan_s": round(max(ends) - min(starts), 2) if ends else None,
        "sum_cell_s": round(compute, 2),
        "longest_cell_s": round(max(seconds.values()), 2),
        "driver_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "epoch_reports": sum(e["event"] == "epoch" for e in events),
    }
    print("RESULT " + json.dumps(out), flush=True)


# ------------------------------------------------------------------------------ the benchmark


def spawn(args: argparse.Namespace, store: Path, order: str, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--child", "--order", order, "--store", str(store)]
    for name in ("cells", "hour_s", "gpus", "slots", "num_cpus", "report_every_s"):
        value = getattr(args, name)
        if value is not None:
            cmd += [f"--{name.replace('_', '-')}", str(value)]
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    env["RSTSWEEP_RAY_TMPDIR"] = tempfile.mkdtemp(prefix="rstp-", dir="/tmp")  # short socket paths
    with open(log, "a") as fh:  # own process group: a SIGKILL takes Ray's processes with it
        return subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def result_of(log: Path) -> dict:
    lines = [line for line in log.read_text().splitlines() if line.startswith("RESULT ")]
    if not lines:
        raise SystemExit(f"bench_paper_scale: the driver printed no result; see {log}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def fresh_store(root: Path, name: str, cells: list) -> Path:
    path = root / name
    write_probes(Store(path), cells)
    return path


def measured(run: dict, slots: int) -> dict:
    ideal = run["sum_cell_s"] / slots
    bound = max(run["longest_cell_s"], ideal)
    n = max(run["done"], 1)
    return {
        **run,
        "slots": slots,
        "lower_bound_s": round(bound, 2),
        "makespan_over_bound": round(run["makespan_s"] / bound, 3) if run["makespan_s"] else None,
        # what the driver adds per cell beyond the schedule's own bound (first start to last result)
        "excess_over_bound_per_cell_s": round((run["makespan_s"] - bound) / n, 4),
        "steady_overhead_per_cell_s": round((run["makespan_s"] - ideal) / n, 4),
        "all_in_overhead_per_cell_s": round((run["wall_s"] - ideal) / n, 4),
        "slot_efficiency": round(run["sum_cell_s"] / (run["makespan_s"] * slots), 3),
    }


def raw_rows(store: Path, table: str, columns: list[str]) -> list[tuple]:
    """Every row of a table's Parquet files on disk, read with pyarrow (no dedup)."""
    rows: list[tuple] = []
    for path in sorted((store / table).rglob("*.parquet")):
        frame = pq.read_table(path, columns=columns).to_pandas()
        rows += list(frame.itertuples(index=False, name=None))
    return rows


def stored_rows(table: Path) -> int:
    """Rows in a table's part files, from the Parquet footers (the live run compacts, so the
    number of files is not the number of cells); a part merged away mid-listing is skipped."""
    rows = 0
    for path in table.glob("*.parquet"):
        try:
            rows += pq.ParquetFile(path).metadata.num_rows
        except (FileNotFoundError, OSError):
            continue
    return rows


def kill_and_resume(args: argparse.Namespace, root: Path, cells: list) -> dict:
    store = fresh_store(root, "killed", cells)
    log = root / "killed.log"
    target = len(cells) // 2
    proc = spawn(args, store, "longest", log)
    while stored_rows(store / "trials") < target:
        if proc.poll() is not None:
            raise SystemExit(f"bench_paper_scale: the driver ended before the kill; see {log}")
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = len(raw_rows(store, "trials", ["cell_id"]))
    rerun = spawn(args, store, "longest", log)
    rerun.wait()
    result = result_of(log)
    trials = Counter(raw_rows(store, "trials", ["cell_id"]))
    epochs = Counter(raw_rows(store, "epochs", ["cell_id", "epoch"]))
    want_epochs = {(c.cell_id, e) for c in cells for e in range(1, c.config.epochs + 1)}
    ids = {c.cell_id for c in cells}
    return {
        "stored_at_kill": at_kill,
        "rerun_done": result["done"],
        "rerun_skipped": result["skipped"],
        "trials_rows": sum(trials.values()),
        "cells_with_one_trials_row": sum(trials[(cid,)] == 1 for cid in ids),
        "epochs_rows": sum(epochs.values()),
        "expected_epochs_rows": len(want_epochs),
        "nothing_lost_or_duplicated": set(trials) == {(cid,) for cid in ids}
        and all(v == 1 for v in trials.values())
        and set(epochs) == want_epochs
        and all(v == 1 for v in epochs.values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", type=int, help="every k-th cell, this many (default: all)")
    parser.add_argument("--hour-s", type=float, default=1.0, help="seconds per estimated GPU-hour")
    parser.add_argument("--gpus", type=int, default=8, help="logical GPUs of the local Ray")
    parser.add_argument("--slots", type=int, default=32, help="concurrent trials")
    parser.add_argument("--num-cpus", type=int, default=32, help="logical CPUs of the local Ray")
    parser.add_argument("--report-every-s", type=float, default=1.0)
    parser.add_argument("--skip", nargs="*", default=[], choices=["yaml", "longest", "kill"])
    parser.add_argument("--json", type=Path, help="also write the JSON here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--order", default="longest", help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    cells = paper_cells(args.cells)
    root = Path(tempfile.mkdtemp(prefix="bench-paper-"))
    report: dict = {
        "benchmark": "paper_scale",
        "goals": {
            "makespan_over_bound": 1.05,
            "excess_over_bound_per_cell_s": 0.05,
            "driver_peak_rss_mb": 2048,
        },
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "setup": {
            "cells": len(cells),
            "slots": args.slots,
            "ray": f"{args.num_cpus} CPU + {args.gpus} GPU (logical)",
            "hour_s": args.hour_s,
            "report_every_s": args.report_every_s,
            "store": str(root),
        },
        "runs": {},
    }
    for order in ("yaml", "longest"):
        if order in args.skip:
            continue
        store = fresh_store(root, order, cells)
        log = root / f"{order}.log"
        spawn(args, store, order, log).wait()
        report["runs"][order] = measured(result_of(log), args.slots)
    if "kill" not in args.skip:
        report["kill_and_resume"] = kill_and_resume(args, root, cells)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    print(f"bench_paper_scale: {summary_line(report)}", file=sys.stderr)


def summary_line(report: dict) -> str:
    parts = []
    for order, r in report["runs"].items():
        parts.append(
            f"{order}: {r['done']} cells on {r['slots']} slots, makespan {r['makespan_s']:.0f} s "
            f"= {r['makespan_over_bound']:.3f} x bound {r['lower_bound_s']:.0f} s, overhead/cell "
            f"{r['steady_overhead_per_cell_s']:.3f} s steady "
            f"({r['all_in_overhead_per_cell_s']:.3f} all-in), "
            f"slot efficiency {r['slot_efficiency']:.3f}, driver RSS "
            f"{r['driver_peak_rss_mb']:.0f} MB"
        )
    kill = report.get("kill_and_resume")
    if kill:
        parts.append(
            f"killed at {kill['stored_at_kill']} stored, rerun {kill['rerun_done']} more: "
            f"{'nothing lost or duplicated' if kill['nothing_lost_or_duplicated'] else 'MISMATCH'}"
        )
    return " | ".join(parts)


if __name__ == "__main__":
    main()

"""Benchmark: a result store written the way `rstsweep run` writes it, read by the CLI commands.

Writes a store as a run does — one `Store.write_result` per finished cell (one part file per
table per cell), each followed by the live run's `Store.compact_if_due`, and `Store.compact` at
the end of the run — for the full paper grid (every sweep of sweeps.yaml under `paper`: ~2,700
cells, 100-1,200 epochs, policy cells with their signals; values from `rstsweep.testing.synthetic`)
and for 10,000 cells (the paper grid with more seeds), on a local directory and on S3 (moto's
server on 127.0.0.1, in its own process). Then times `rstsweep status`, `status SWEEP` (the
largest sweep), `figures`, `tables` and `verify` as the CLI runs them (subprocesses, from a
directory without a sweeps file), with each one's peak RSS (`os.wait4`), twice: in the layout a
live run leaves mid-way (before its end-of-run compaction) and after the run.

Goals on 2 cores, 10,000 cells: status ≤ 2 s, status SWEEP ≤ 1 s, figures + tables ≤ 10 s, peak
RSS ≤ 1 GB; S3 within 2× of local. Prints one JSON object and a one-line summary.

`--bulk` writes each table as one part with `write_synthetic_store` instead (seconds instead of
minutes): exactly the layout a run leaves after its end-of-run compaction, so it times the
"after run" reads only (reported as layout "bulk"), for when writing cell by cell takes too long.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_store.py                # paper + 10,000
    PYTHONPATH=src .venv/bin/python benchmarks/bench_store.py --cells 40 --only local   # tiny
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOALS = {"status": 2.0, "status SWEEP": 1.0, "figures + tables": 10.0, "rss_mb": 1024.0}
S3_FACTOR = 2.0
BUCKET = "bench-store"


def _cells(size: str, sweeps_file: Path) -> list:
    """The paper grid (size "paper"), or its first N unique cells with as many seeds as needed."""
    from rstsweep.sweeps import load_sweeps
    from rstsweep.testing.synthetic import grid_cells

    spec = load_sweeps(sweeps_file)
    paper = spec.profiles["paper"].model_dump()
    if size == "paper":
        return grid_cells(spec, "paper", profile_spec=paper)
    want = int(size)
    per_seed = len({c.cell_id for c in grid_cells(spec, "paper", profile_spec=paper)})
    seeds = max(1, math.ceil(want * len(paper["seeds"]) / per_seed))
    cells = grid_cells(spec, "paper", profile_spec=paper | {"seeds": list(range(seeds))})
    first = list({c.cell_id: None for c in cells})[:want]
    keep = set(first)
    return [c for c in cells if c.cell_id in keep]


def write_like_a_run(stores: dict, cells: list) -> dict:
    """Record membership, then write every cell through the run's writer into each store."""
    from rstsweep.testing.synthetic import synthetic_results

    timing = dict.fromkeys(stores, 0.0)
    merges = dict.fromkeys(stores, 0)
    for store in stores.values():
        store.record_cells(cells, "paper")
    for cell, result in synthetic_results(cells):
        for name, store in stores.items():
            t0 = time.perf_counter()
            store.write_result(cell, result, "paper")
            merges[name] += store.compact_if_due()
            timing[name] += time.perf_counter() - t0
    return {n: {"write_s": round(timing[n], 1), "merges": merges[n]} for n in stores}


def parts(store) -> dict[str, int]:
    from rstsweep.store.files import part_files
    from rstsweep.store.schema import TABLES

    return {name: len(part_files(store.location, name)) for name in TABLES}


def run_cli(args: list[str], cwd: Path, env: dict) -> dict:
    """One `rstsweep ...` subprocess: wall seconds, CPU seconds (user + system) and its own peak
    RSS in MB. Measured by GNU time when present: a child forked from this (large) process would
    report this process's pages as its peak."""
    exe = [sys.executable, "-m", "rstsweep", *args]
    timer = shutil.which("time", path="/usr/bin:/bin")
    if timer:
        exe = [timer, "-f", "RSTBENCH %M %U %S", *exe]
    t0 = time.perf_counter()
    proc = subprocess.run(
        exe,
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        capture_output=False,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"rstsweep {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    marks = [ln.split() for ln in proc.stderr.splitlines() if ln.startswith("RSTBENCH ")]
    rss_kb, user, system = (float(x) for x in marks[-1][1:]) if marks else (0.0, 0.0, 0.0)
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(user + system, 2),
        "rss_mb": round(rss_kb / 1024, 1),
    }


def time_commands(where: str, sweep: str, work: Path, env: dict) -> dict:
    out = work / "figures-out"
    runs = {
        "status": run_cli(["status", "-s", where], work, env),
        "status SWEEP": run_cli(["status", sweep, "-s", where], work, env),
        "figures": run_cli(["figures", "-s", where, "-o", str(out)], work, env),
        "tables": run_cli(["tables", "-s", where], work, env),
        "verify": run_cli(["verify", "-s", where], work, env),
    }
    shutil.rmtree(out, ignore_errors=True)
    runs["figures + tables"] = {
        "wall_s": round(runs["figures"]["wall_s"] + runs["tables"]["wall_s"], 3),
        "cpu_s": round(runs["figures"]["cpu_s"] + runs["tables"]["cpu_s"], 2),
        "rss_mb": max(runs["figures"]["rss_mb"], runs["tables"]["rss_mb"]),
    }
    return runs


class MotoServer:
    """moto's S3 server in its own process on a free 127.0.0.1 port, with one bucket."""

    def __enter__(self) -> dict:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        exe = Path(sys.executable).with_name("moto_server")
        self.proc = subprocess.Popen(
            [str(exe), "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        env = {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        }
        os.environ.update(env)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        import pyarrow.fs as pafs

        fs = pafs.S3FileSystem(
            endpoint_override=env["AWS_ENDPOINT_URL"],
            region="us-east-1",
            allow_bucket_creation=True,
        )
        fs.create_dir(BUCKET)
        return env

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def bench_size(
    size: str, backends: list[str], work: Path, env: dict, sweeps_file: Path, bulk: bool
) -> dict:
    from rstsweep.store.store import Store
    from rstsweep.testing.synthetic import write_synthetic_store

    cells = _cells(size, sweeps_file)
    n = len({c.cell_id for c in cells})
    where = {"local": str(work / f"store-{size}"), "s3": f"s3://{BUCKET}/store-{size}"}
    stores = {b: Store(where[b]) for b in backends}
    t0 = time.perf_counter()
    if bulk:
        for store in stores.values():
            write_synthetic_store(store, cells, profile="paper")
        written = {b: {"write_s": None, "merges": 0} for b in backends}
    else:
        written = write_like_a_run(stores, cells)
    build_s = time.perf_counter() - t0
    counts: dict[str, int] = {}
    for c in cells:
        counts[c.sweep] = counts.get(c.sweep, 0) + 1
    sweep = max(counts, key=counts.__getitem__)
    result = {"cells": n, "build_s": round(build_s, 1), "sweep": sweep, "backends": {}}
    for b in backends:
        if bulk:
            bulk_run = {"parts": parts(stores[b]), **time_commands(where[b], sweep, work, env)}
            result["backends"][b] = {**written[b], "bulk": bulk_run}
            continue
        mid = {"parts": parts(stores[b]), **time_commands(where[b], sweep, work, env)}
        stores[b].compact()  # what the end of the run does
        after = {"parts": parts(stores[b]), **time_commands(where[b], sweep, work, env)}
        result["backends"][b] = {**written[b], "mid-run": mid, "after run": after}
    return result


def verdicts(report: dict) -> list[str]:
    """Goal checks of every size/backend/layout (the goals are stated for 10,000 cells)."""
    lines = []
    for size in report["sizes"]:
        for b, res in size["backends"].items():
            for layout in [k for k in ("mid-run", "after run", "bulk") if k in res]:
                r = res[layout]
                rss = max(v["rss_mb"] for k, v in r.items() if k != "parts")
                missed = [
                    k
                    for k in ("status", "status SWEEP", "figures + tables")
                    if r[k]["wall_s"] > GOALS[k]
                ]
                missed += ["rss"] if rss > GOALS["rss_mb"] else []
                local = size["backends"].get("local", {}).get(layout)
                if b == "s3" and local:
                    slow = [
                        k
                        for k in ("status", "status SWEEP", "figures + tables")
                        if r[k]["wall_s"] > S3_FACTOR * local[k]["wall_s"]
                    ]
                    missed += [f"{k} > {S3_FACTOR:g}x local" for k in slow]
                lines.append(
                    f"{size['cells']} cells {b} {layout}: status {r['status']['wall_s']:.2f} s "
                    f"({r['status']['cpu_s']:.2f} s CPU), "
                    f"status {size['sweep']} {r['status SWEEP']['wall_s']:.2f} s, figures + "
                    f"tables {r['figures + tables']['wall_s']:.2f} s, verify "
                    f"{r['verify']['wall_s']:.2f} s, peak RSS {rss:.0f} MB"
                    + (f" (missed: {', '.join(missed)})" if missed else " (goals met)")
                )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cells",
        nargs="+",
        default=["paper", "10000"],
        help="sizes: 'paper' (the full grid) or a number of cells",
    )
    parser.add_argument("--only", choices=["local", "s3"], help="one backend only")
    parser.add_argument("--bulk", action="store_true", help="write in bulk (see above)")
    parser.add_argument("--keep", type=Path, help="build the stores here and keep them")
    parser.add_argument("--sweeps-file", type=Path, default=REPO / "sweeps.yaml")
    args = parser.parse_args()
    backends = [args.only] if args.only else ["local", "s3"]
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-store-"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), RAY_USAGE_STATS_ENABLED="0")
    load_before = os.getloadavg()
    report: dict = {"machine": {"cpus": os.cpu_count()}, "goals": GOALS, "sizes": []}
    try:
        if "s3" in backends:
            server = MotoServer()
            env |= server.__enter__()
        for size in args.cells:
            report["sizes"].append(
                bench_size(size, backends, work, env, args.sweeps_file, args.bulk)
            )
    finally:
        if "s3" in backends:
            server.__exit__()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report["machine"]["load_avg_before"] = [round(x, 1) for x in load_before]
    report["machine"]["load_avg_after"] = [round(x, 1) for x in os.getloadavg()]
    lines = verdicts(report)
    report["summary"] = lines
    print(json.dumps(report, indent=2))
    load = report["machine"]["load_avg_after"][0]
    print(f"bench_store (load {load}): " + "; ".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

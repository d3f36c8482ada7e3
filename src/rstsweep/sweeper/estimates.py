"""Step-cost estimates: measured step costs from the store's trials (`step_costs`) and, for
settings the store has never run, step-cost probes; the device-hours of a placement (`Placement`).

`rstsweep plan` (and `run`, before it starts) needs a base and a sharpness-aware step time per
setting to estimate time; measured ones come from finished cells. For a setting with none, a probe
runs a few steps of each branch (`trainers.probe.measure_steps`) on this machine's device, in one
subprocess that imports torch once and that is killed when the budget (a minute by default) runs
out; what did not fit is reported as skipped. Results are cached in the store's `probes` table and
always shown as estimates, never as measurements. A setting is (model, dataset, algorithm, batch
size, width, device). No torch here.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from rstsweep.core.catalog import DATASET_SHAPES, cell_steps
from rstsweep.core.format import format_duration
from rstsweep.store.files import utc_now
from rstsweep.store.rows import atom_columns, atoms_of
from rstsweep.sweeper.options import Placement
from rstsweep.sweeper.resources import concurrent_here, detect_gpus

if TYPE_CHECKING:
    from rstsweep.core.config import CellConfig
    from rstsweep.core.passes import StepAtoms
    from rstsweep.store.store import Store
    from rstsweep.sweeps import Cell

BUDGET_S = 60.0  # probe only where it costs under a minute in all
PROBE_STEPS = 5
KEY = ("model", "dataset", "algorithm", "batch_size", "width", "device")


def setting(config: CellConfig, device: str) -> tuple:
    """The probe key of a cell config on `device` ("cpu" or "cuda")."""
    return (
        config.model,
        config.dataset,
        config.algorithm,
        int(config.batch_size),
        config.width,
        device,
    )


def target_device(gpus_per_trial: float) -> str | None:
    """The device a trial would run on, if this machine has it (None: it does not, e.g. a login
    node without GPUs planning a GPU sweep: probing the CPU there would mislead)."""
    if gpus_per_trial <= 0:
        return "cpu"
    return "cuda" if detect_gpus() > 0 else None


@dataclass
class ProbeReport:
    """What one `probe_settings` call did."""

    probed: int = 0
    cached: int = 0
    skipped: list[str] = field(default_factory=list)  # settings not probed, with the reason
    wall_s: float = 0.0
    device: str | None = None


def cached_costs(store: Store | None) -> dict[tuple, tuple[float, float | None]]:
    """{setting: (sgd_step_s, sa_step_s)} from the store's probes table (latest probe wins)."""
    if store is None:
        return {}
    frame = store.read("probes")
    if frame.empty:
        return {}
    frame = frame.sort_values("probed_at", kind="stable")
    out = {}
    for row in frame.itertuples(index=False):
        key = tuple(getattr(row, k) for k in KEY)
        key = (*key[:3], int(key[3]), None if _missing(key[4]) else int(key[4]), key[5])
        sa = None if _missing(row.sa_step_s) else float(row.sa_step_s)
        out[key] = (float(row.sgd_step_s), sa)
    return out


def cached_atoms(store: Store | None) -> dict[tuple, StepAtoms]:
    """{setting: core.passes.StepAtoms} from the store's probes table (latest probe with atoms
    wins; probes written before atoms were measured have none)."""
    if store is None:
        return {}
    frame = store.read("probes")
    if frame.empty:
        return {}
    out = {}
    for row in frame.sort_values("probed_at", kind="stable").itertuples(index=False):
        atoms = atoms_of(row)
        if atoms is not None:
            key = tuple(getattr(row, k) for k in KEY)
            key = (*key[:3], int(key[3]), None if _missing(key[4]) else int(key[4]), key[5])
            out[key] = atoms
    return out


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _cost_proxy(config: CellConfig) -> float:
    # order cheap settings first so a budget covers as many as it can: pixels × batch
    channels, side, _ = DATASET_SHAPES.get(config.dataset, (3, 224, 1000))
    return channels * side * side * config.batch_size


def probe_settings(
    configs: Iterable[CellConfig],
    store: Store | None,
    device: str,
    budget_s: float = BUDGET_S,
    steps: int = PROBE_STEPS,
) -> ProbeReport:
    """Probe each distinct setting of `configs` not yet in the store's probes table, within
    `budget_s` seconds in all; write each result to the store as it arrives."""
    report = ProbeReport(device=device)
    known = cached_costs(store)
    todo: dict[tuple, CellConfig] = {}
    for config in configs:
        key = setting(config, device)
        if key in known:
            continue
        todo.setdefault(key, config)
    report.cached = len({setting(c, device) for c in configs} & set(known)) if known else 0
    if not todo:
        return report
    ordered = sorted(todo.items(), key=lambda kv: _cost_proxy(kv[1]))
    t0 = time.monotonic()
    results = _run_probes([c for _, c in ordered], device, budget_s, steps)
    report.wall_s = time.monotonic() - t0
    rows = []
    for (key, _), result in zip(ordered, results, strict=True):
        name = "/".join(str(k) for k in key[:4])
        if result is None:
            report.skipped.append(f"{name}: over the {budget_s:.0f} s probe budget")
        elif "error" in result:
            report.skipped.append(f"{name}: {result['error']}")
        else:
            report.probed += 1
            rows.append(_row(key, result, steps))
    if rows and store is not None and not store.read_only:
        store.write_probes(rows)
    return report


def _row(key: tuple, result: dict, steps: int) -> dict[str, object]:
    return {
        **dict(zip(KEY, key, strict=True)),
        "sgd_step_s": result["sgd_step_s"],
        "sa_step_s": result.get("sa_step_s"),
        "peak_memory_bytes": result.get("peak_memory_bytes"),
        "steps": steps,
        "probed_at": utc_now(),
        **atom_columns(result.get("atoms")),  # the step atoms of the measured cost model
    }


def _run_probes(configs: list[CellConfig], device: str, budget_s: float, steps: int) -> list:
    """Results in order (None where the budget ran out first), from one subprocess."""
    lines = [
        c.model_copy(update={"device": device, "threads": c.threads or 1}).model_dump_json()
        for c in configs
    ]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "rstsweep.trainers.probe", "-", str(steps)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    out: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [out.put(line) for line in proc.stdout], daemon=True).start()
    assert proc.stdin is not None
    proc.stdin.write("\n".join(lines) + "\n")
    proc.stdin.close()
    deadline = time.monotonic() + budget_s
    results: list = []
    try:
        while len(results) < len(configs):
            try:
                line = out.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            results.append(json.loads(line))
    finally:
        proc.kill()
        proc.wait()
    return results + [None] * (len(configs) - len(results))


def step_costs(trials: pd.DataFrame) -> dict[tuple[str, str, int], tuple[float, float]]:
    """Median measured (sgd_step_s, sa_step_s) per (model, dataset, batch_size). A missing branch
    is filled as half/double the other (one pass vs two)."""
    out: dict[tuple[str, str, int], tuple[float, float]] = {}
    if trials.empty:
        return out
    frame = trials.dropna(subset=["model", "dataset", "batch_size"])
    for (model, dataset, batch), rows in frame.groupby(["model", "dataset", "batch_size"]):
        sgd, sa = rows["sgd_step_s"].median(), rows["sa_step_s"].median()
        if pd.isna(sgd) and pd.isna(sa):
            continue
        sgd = sa / 2 if pd.isna(sgd) else sgd
        sa = 2 * sgd if pd.isna(sa) else sa
        out[(str(model), str(dataset), int(batch))] = (float(sgd), float(sa))
    return out


def unmeasured(cells: Iterable[Cell], store: Store | None) -> list[CellConfig]:
    """Configs of the pending cells whose (model, dataset, batch size) has no measured step cost."""
    done = store.done_ids() if store is not None else set()
    measured = step_costs(store.read("trials")) if store is not None else {}
    return [
        c.config
        for c in cells
        if c.cell_id not in done
        and (c.config.model, c.config.dataset, c.config.batch_size) not in measured
    ]


def worth_probing(configs: list[CellConfig], steps: int = PROBE_STEPS, share: float = 0.01) -> bool:
    """Whether probing costs under `share` of the training it estimates (a tiny sweep is cheaper
    to run than to probe): compares the probe's steps with the cells' total steps."""
    settings = {(c.model, c.dataset, c.algorithm, c.batch_size, c.width) for c in configs}
    probe_steps = len(settings) * 2 * (2 + steps)
    return sum(cell_steps(c) or 0 for c in configs) * share > probe_steps


def resource_line(total_s: float, placement: Placement) -> str:
    """'N device-hours; wall ~T on S slots' for `total_s` seconds of one-at-a-time training."""
    slots = concurrent_here(placement)
    if placement.gpus > 0:
        hours = f"{total_s * placement.gpus / 3600:.1f} GPU-hours"
    else:
        hours = f"{total_s * placement.cpus / 3600:.1f} CPU-hours"
    return f"{hours}; wall ≈ {format_duration(total_s / slots)} on {slots} concurrent trial(s)"


def probe_for(
    cells: list[Cell], store: Store | None, placement: Placement, *, only_if_worth: bool = False
) -> tuple[str | None, ProbeReport | None]:
    """Probe the pending, unmeasured settings of `cells` on the trials' device. Returns (device,
    report); report None when nothing was probed (all measured or cached, no such device here,
    or, with `only_if_worth`, a sweep too small to be worth probing)."""
    device = target_device(placement.gpus)
    if device is None:
        return None, ProbeReport(skipped=["no GPU on this machine to probe on"])
    configs = unmeasured(cells, store)
    if not configs or (only_if_worth and not worth_probing(configs)):
        return device, None
    budget = float(os.environ.get("RSTSWEEP_PROBE_BUDGET_S", BUDGET_S))
    return device, probe_settings(configs, store, device, budget_s=budget)


def report_lines(report: ProbeReport | None) -> list[str]:
    """What a probe did, for `plan` and `run`."""
    if report is None:
        return []
    lines = []
    if report.probed:
        lines.append(
            f"probed {report.probed} setting(s) on {report.device} in {report.wall_s:.0f} s "
            "(a few steps each; cached in the store)"
        )
    lines += [f"not probed: {reason}" for reason in report.skipped]
    return lines

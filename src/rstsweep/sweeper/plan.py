"""`rstsweep plan SWEEP`: what a sweep would run, its expected forward-backward passes and time.

Steps per cell come from a small table of training-set sizes (subset-aware, the trainer's
drop_last rule), expected passes are Σ steps × (1 + cost_per_SA_step × Δη) with the cost per SA
step from the trainer's cost model (`rstsweep.core.passes`), and the time estimate uses the median
step costs the store has measured for the same model, dataset and batch size, or, for settings
never run, step-cost probes (`sweeper.probe`, shown as estimates). Where GPU trials of the same
model, dataset and batch size recorded their peak memory, the plan also says how many such trials
fit on one GPU (`trials_per_gpu`). No torch, no ray here: without probing this answers in about a
second.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rstsweep.core.catalog import TRAIN_SIZES, steps_per_epoch
from rstsweep.core.format import format_count, format_duration
from rstsweep.store.store import Store
from rstsweep.sweeper.spec import Cell, expand, load_sweeps


def cell_steps(config) -> int | None:
    """T = steps_per_epoch × epochs for a cell, or None for an unknown dataset."""
    size = TRAIN_SIZES.get(config.dataset)
    if size is None:
        return None
    n = min(size, config.train_subset) if config.train_subset else size
    return steps_per_epoch(n, config.batch_size) * config.epochs


def sa_step_cost(config) -> float:
    """Expected extra passes of one sharpness-aware step over a base step, under the same cost
    model the trainer counts with (LookSAM: 1/k; ESAM: γ-fraction second pass + ranking forward −
    skipped first-pass weight gradients)."""
    from rstsweep.core.passes import expected_sa_extra

    return expected_sa_extra(config)


def expected_extra(config, steps: int | None) -> float:
    """Expected Δη of the cell (discrete mean of p over its T steps; 0 for SGD)."""
    from rstsweep.schedules import parse

    if config.algorithm == "sgd":
        return 0.0
    schedule = parse(config.schedule)
    return schedule.expected_extra(steps) if steps else schedule.closed_form_extra


# Per-process GPU memory outside torch.cuda.max_memory_allocated (CUDA context, cuBLAS/cuDNN
# workspaces; a few hundred MiB) and the allocator's cache over the allocated peak: rough margins.
CUDA_CONTEXT_BYTES = 768 * 2**20
ALLOCATOR_HEADROOM = 1.2


def trials_per_gpu(peak_bytes: float, device_bytes: float) -> int:
    """How many trials of a measured peak (max allocated) fit on a GPU of `device_bytes`."""
    need = peak_bytes * ALLOCATOR_HEADROOM + CUDA_CONTEXT_BYTES
    return max(1, int(device_bytes // need))


def packing(trials: pd.DataFrame) -> dict[tuple[str, str, int], tuple[float, float, int]]:
    """(largest peak, GPU memory, trials per GPU) per (model, dataset, batch_size), from trials
    that ran on a GPU and recorded both numbers."""
    needed = {"device_type", "peak_memory_bytes", "device_memory_bytes"}
    if trials.empty or not needed <= set(trials.columns):
        return {}
    gpu = trials[trials["device_type"] == "cuda"].dropna(
        subset=["model", "dataset", "batch_size", "peak_memory_bytes", "device_memory_bytes"]
    )
    out = {}
    for (model, dataset, batch), rows in gpu.groupby(["model", "dataset", "batch_size"]):
        peak = float(rows["peak_memory_bytes"].max())
        total = float(rows["device_memory_bytes"].min())
        out[(str(model), str(dataset), int(batch))] = (peak, total, trials_per_gpu(peak, total))
    return out


@dataclass
class GroupPlan:
    group: str
    cells: int = 0
    done: int = 0
    steps: int = 0  # Σ T over the group's cells (unknown datasets count 0)
    passes: float = 0.0  # Σ expected forward-backward passes, all cells
    pending_passes: float = 0.0
    pending_time_s: float | None = 0.0  # None: some pending cell has no measurement
    probed: int = 0  # pending cells timed from step-cost probes (estimates, not measurements)
    extras: list[float] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return self.cells - self.done

    @property
    def mean_extra(self) -> float:
        return sum(self.extras) / len(self.extras) if self.extras else 0.0


@dataclass
class SweepPlan:
    sweep: str
    profile: str
    groups: list[GroupPlan]
    models: list[str]
    datasets: list[str]
    seeds: int
    unknown_steps: int = 0  # cells whose dataset size is unknown
    probe_lines: list[str] = field(default_factory=list)  # what probing did, for the printout
    resources: Any = None  # sweeper.probe.Resources: device-hours and wall time
    # (model, dataset, batch) -> (peak bytes, GPU bytes, trials per GPU), for this sweep's cells
    packing: dict[tuple[str, str, int], tuple[float, float, int]] = field(default_factory=dict)

    def total(self) -> GroupPlan:
        out = GroupPlan("total", pending_time_s=0.0)
        for g in self.groups:
            out.cells += g.cells
            out.done += g.done
            out.steps += g.steps
            out.passes += g.passes
            out.pending_passes += g.pending_passes
            out.probed += g.probed
            out.extras += g.extras
            if out.pending_time_s is not None:
                out.pending_time_s = (
                    None if g.pending_time_s is None else out.pending_time_s + g.pending_time_s
                )
        return out


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


def make_plan(
    cells: list[Cell], sweep: str, profile: str, store: Store | None, device: str | None = None
) -> SweepPlan:
    """Aggregate the cells of a sweep by group: counts, Σ steps, expected passes, estimated time
    (from measured step costs, else from the store's step-cost probes on `device`)."""
    from rstsweep.sweeper.probe import cached_costs, setting

    done = store.done_ids() if store else set()
    trials = store.read("trials") if store else pd.DataFrame()
    costs = step_costs(trials)
    probes = cached_costs(store) if store and device else {}
    groups: dict[str, GroupPlan] = {}
    unknown = 0
    for cell in cells:
        g = groups.setdefault(cell.group, GroupPlan(cell.group))
        cfg = cell.config
        steps = cell_steps(cfg)
        unknown += steps is None
        extra = expected_extra(cfg, steps)
        passes = (steps or 0) * (1.0 + sa_step_cost(cfg) * extra)
        g.cells += 1
        g.steps += steps or 0
        g.passes += passes
        g.extras.append(extra)
        if cell.cell_id in done:
            g.done += 1
            continue
        g.pending_passes += passes
        cost = costs.get((cfg.model, cfg.dataset, cfg.batch_size))
        if cost is None and device and setting(cfg, device) in probes:
            base, sa = probes[setting(cfg, device)]
            cost, g.probed = (base, sa if sa is not None else 2 * base), g.probed + 1
        if cost is None or steps is None or g.pending_time_s is None:
            g.pending_time_s = None
        else:
            sgd, sa = cost
            sa_time = sgd + sa_step_cost(cfg) * (sa - sgd)
            g.pending_time_s += steps * ((1 - extra) * sgd + extra * sa_time)
    configs = [c.config for c in cells]
    keys = {(c.model, c.dataset, c.batch_size) for c in configs}
    return SweepPlan(
        sweep=sweep,
        profile=profile,
        groups=list(groups.values()),
        models=sorted({c.model for c in configs}),
        datasets=sorted({c.dataset for c in configs}),
        seeds=len({c.seed for c in configs}),
        unknown_steps=unknown,
        packing={key: fit for key, fit in packing(trials).items() if key in keys},
    )


def plan_sweep(
    file: Path,
    sweep: str,
    profile: str,
    store_dir: Path | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    probe: bool = False,
    resources: Any = None,
    chosen: Any = None,
) -> SweepPlan:
    """Load, expand (with `--set` overrides) and plan: the `plan` command's entry point. `probe`:
    time the pending settings that have no measurement (sweeper.probe; cached in the store).
    `chosen`: a `sweeper.slices.Slice` (`--where`, `--seeds`) of the cells."""
    from rstsweep.sweeper.probe import Resources, probe_for, report_lines, target_device
    from rstsweep.sweeper.slices import Slice, select

    cells = select(expand(load_sweeps(file), sweep, profile, overrides), chosen or Slice())
    resources = resources or Resources()
    store = Store(store_dir, read_only=not probe) if store_dir is not None else None
    lines: list[str] = []
    if probe and store is not None:
        device, report = probe_for(cells, store, resources)
        lines = report_lines(report)
    else:
        device = target_device(resources.gpus_per_trial) if store is not None else None
    plan = make_plan(cells, sweep, profile, store, device=device)
    plan.probe_lines, plan.resources = lines, resources
    return plan


def _time_cell(g: GroupPlan) -> str:
    if not g.pending:
        return "done"
    # "~": timed (partly) from step-cost probes, an estimate rather than a measurement
    return ("~" if g.probed and g.pending_time_s is not None else "") + format_duration(
        g.pending_time_s
    )


def print_plan(plan: SweepPlan, store_dir: Path | None) -> None:
    """Render the plan with rich."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped / captured: do not wrap lines at 80 columns
        console.width = max(console.width, 120)
    seeds = f"{plan.seeds} seed{'s' if plan.seeds != 1 else ''}"
    console.print(
        f"[bold]{plan.sweep}[/] · profile [bold]{plan.profile}[/] · "
        f"{', '.join(plan.models)} × {', '.join(plan.datasets)} × {seeds}"
    )
    table = Table(show_edge=False)
    for name in ("group", "cells", "done", "pending", "E[Δη]", "passes", "est. time"):
        table.add_column(name, justify="left" if name == "group" else "right")
    rows = [*plan.groups, plan.total()]
    for i, g in enumerate(rows):
        if i == len(rows) - 1:
            table.add_section()
        table.add_row(
            g.group,
            str(g.cells),
            str(g.done),
            str(g.pending),
            f"{g.mean_extra:.3f}",
            format_count(g.passes),
            _time_cell(g),
        )
    console.print(table)
    total = plan.total()
    console.print(
        f"expected forward-backward passes: {format_count(total.passes)} "
        f"({format_count(total.pending_passes)} pending; SGD alone: {format_count(total.steps)})"
    )
    if plan.unknown_steps:
        console.print(
            f"{plan.unknown_steps} cells have an unknown dataset size: passes not counted"
        )
    if total.pending == 0:
        console.print("estimated time: nothing left to run")
    elif total.pending_time_s is None:
        where = f" in {store_dir}" if store_dir is not None else ""
        console.print(
            f"estimated time: no measurements yet{where} for these model/dataset/batch settings "
            "(run a few cells first)"
        )
    else:
        share = "" if total.probed == total.pending else "partly "
        source = f" ({share}from step-cost probes: estimates, not measurements)"
        source = source if total.probed else ""
        console.print(
            f"estimated time{source}: {format_duration(total.pending_time_s)} of training, one "
            "cell at a time (evaluation not included)",
            soft_wrap=True,
        )
        if plan.resources is not None:
            from rstsweep.sweeper.probe import resource_line

            console.print(f"  = {resource_line(total.pending_time_s, plan.resources)}")
    for (model, dataset, batch), (peak, gpu, n) in sorted(plan.packing.items()):
        console.print(
            f"packing: {model} × {dataset} × {batch}: peak {peak / 2**30:.1f} of "
            f"{gpu / 2**30:.0f} GiB, ~{n} trial{'s' if n != 1 else ''} per GPU "
            f"(--gpus-per-trial {1 / n:.3g})"
        )
    for line in plan.probe_lines:
        console.print(line, soft_wrap=True)

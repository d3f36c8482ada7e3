"""`rstsweep plan SWEEP`: what a sweep would run, its expected forward-backward passes and time.

Steps per cell come from a small table of training-set sizes (subset-aware, the trainer's
drop_last rule), expected passes are Σ steps × (1 + cost_per_SA_step × Δη) with the cost per SA
step from the trainer's cost model (`rstsweep.core.passes`), and the time estimate uses the median
step costs the store has measured for the same model, dataset and batch size, or, for settings
never run, step-cost probes (`sweeper.estimates`, shown as estimates). Where GPU trials of the same
model, dataset and batch size recorded their peak memory, the plan also says how many such trials
fit on one GPU (`trials_per_gpu`). No torch, no ray here: without probing this answers in about a
second.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from rstsweep.core.catalog import cell_steps, model_variant, steps_per_epoch
from rstsweep.core.format import format_count, format_duration
from rstsweep.core.passes import base_extra_time, expected_sa_extra, sa_extra_time
from rstsweep.schedules import parse
from rstsweep.store.store import Store
from rstsweep.sweeper.estimates import (
    cached_atoms,
    cached_costs,
    probe_for,
    report_lines,
    resource_line,
    setting,
    step_costs,
    target_device,
)
from rstsweep.sweeper.options import Placement
from rstsweep.sweeper.slices import Slice, select
from rstsweep.sweeps import Cell, expand, load_sweeps

__all__ = ["cell_steps", "make_plan", "plan_sweep", "print_plan", "steps_per_epoch"]


def sa_step_cost(config) -> float:
    """Expected extra passes of one sharpness-aware step over a base step, under the same cost
    model the trainer counts with (LookSAM: 1/k; ESAM: γ-fraction second pass + ranking forward −
    skipped first-pass weight gradients)."""
    return expected_sa_extra(config)


def expected_extra(config, steps: int | None) -> float:
    """Expected Δη of the cell (discrete mean of p over its T steps; 0 for SGD)."""
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
    placement: Placement | None = None  # for device-hours and wall time
    # (model, dataset, batch) -> (peak bytes, GPU bytes, trials per GPU), for this sweep's cells
    packing: dict[tuple[str, str, int], tuple[float, float, int]] = field(default_factory=dict)
    pending: dict[str, CellEstimate] = field(default_factory=dict)  # cell_id -> cost, YAML order

    def launch_order(self) -> list[str]:
        """The pending cell ids in the order `run` launches them: longest first."""
        return longest_first(self.pending)

    def order_line(self) -> str | None:
        """The launch order by group, for the printout (None: nothing pending)."""
        if not self.pending:
            return None
        cost = _comparable_costs(self.pending)
        timed = all(e.seconds is not None for e in self.pending.values())
        first: dict[str, float] = {}
        for cid in longest_first(self.pending):
            first.setdefault(self.pending[cid].group, cost[cid])
        unit = "" if timed else " (by expected passes)"
        shown = [f"{g} ({format_duration(c)})" if timed else g for g, c in list(first.items())[:8]]
        more = f", ... {len(first) - 8} more" if len(first) > 8 else ""
        return f"launch order, longest cell first{unit}: {', '.join(shown)}{more}"

    # (model, dataset) -> the network it builds there (`core.catalog.model_variant`)
    layouts: dict[tuple[str, str], str] = field(default_factory=dict)
    cost: str = "flops"  # how an SA step's extra time is estimated (core.passes.COSTS)
    atom_cells: int = 0  # pending cells whose SA step was timed from measured step atoms

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


def cell_seconds(config, steps: int, extra: float, cost: tuple[float, float]) -> float:
    """Training time of one cell: T steps, a share Δη of them sharpness-aware (whose extra over a
    base step is scaled by the algorithm's cost per SA step)."""
    sgd, sa = cost
    sa_time = sgd + sa_step_cost(config) * (sa - sgd)
    return steps * ((1 - extra) * sgd + extra * sa_time)


class CellEstimate(NamedTuple):
    """A pending cell's estimated cost: seconds (measured or probed step costs; None when neither
    exists) and expected forward-backward passes (the pass model, always known)."""

    group: str
    seconds: float | None
    passes: float


def longest_first(pending: Mapping[str, CellEstimate]) -> list[str]:
    """Cell ids in decreasing estimated cost, so the longest cells start first and the tail of a
    run is short. Seconds where known; a cell with passes only is converted at the median seconds
    per pass of the timed cells (passes alone when none is timed). Ties keep the given order."""
    cost = _comparable_costs(pending)
    return sorted(cost, key=lambda cid: -cost[cid])


def _comparable_costs(pending: Mapping[str, CellEstimate]) -> dict[str, float]:
    rates = [e.seconds / e.passes for e in pending.values() if e.seconds is not None and e.passes]
    rate = statistics.median(rates) if rates else 1.0
    return {
        cid: e.seconds if e.seconds is not None else e.passes * rate for cid, e in pending.items()
    }


def make_plan(
    cells: list[Cell],
    sweep: str,
    profile: str,
    store: Store | None,
    device: str | None = None,
    cost: str = "flops",
) -> SweepPlan:
    """Aggregate the cells of a sweep by group: counts, Σ steps, expected passes, estimated time
    (from measured step costs, else from the store's step-cost probes on `device`). `cost`
    "time": an SA step's extra time comes from the step atoms probed on `device`
    (`core.passes.sa_extra_time`) where the store has them, else (and with "flops") from the
    FLOP model's extra passes scaled by the measured SA − base step time."""
    done = store.done_ids() if store else set()
    trials = store.read("trials") if store else pd.DataFrame()
    costs = step_costs(trials)
    probes = cached_costs(store) if store and device else {}
    atoms = cached_atoms(store) if store and device and cost == "time" else {}
    atom_cells = 0
    groups: dict[str, GroupPlan] = {}
    pending: dict[str, CellEstimate] = {}
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
        step_time = costs.get((cfg.model, cfg.dataset, cfg.batch_size))  # (base, SA) seconds
        if step_time is None and device and setting(cfg, device) in probes:
            base, sa = probes[setting(cfg, device)]
            step_time, g.probed = (base, sa if sa is not None else 2 * base), g.probed + 1
        seconds = None
        if step_time is not None and steps is not None:
            seconds = cell_seconds(cfg, steps, extra, step_time)
            measured = atoms.get(setting(cfg, device)) if device else None
            if measured is not None:  # the measured cost model: this device's step atoms
                per_step = extra * sa_extra_time(cfg, measured)
                per_step += (1.0 - extra) * base_extra_time(cfg, measured)
                seconds = steps * step_time[0] * (1.0 + per_step)
                atom_cells += 1
        pending[cell.cell_id] = CellEstimate(cell.group, seconds, passes)
        if seconds is None or g.pending_time_s is None:
            g.pending_time_s = None
        else:
            g.pending_time_s += seconds
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
        pending=pending,
        layouts={(c.model, c.dataset): model_variant(c.model, c.dataset) for c in configs},
        cost=cost,
        atom_cells=atom_cells,
    )


def plan_sweep(
    file: Path,
    sweep: str,
    profile: str,
    store_dir: Path | None,
    overrides: Mapping[str, object] | None = None,
    *,
    probe: bool = False,
    placement: Placement | None = None,
    cost: str = "flops",
    chosen: Slice | None = None,
) -> SweepPlan:
    """Load, expand (with `--set` overrides) and plan: the `plan` command's entry point. `probe`:
    time the pending settings that have no measurement (sweeper.estimates; cached in the store).
    `chosen`: a `sweeper.slices.Slice` (`--where`, `--seeds`) of the cells."""
    cells = select(expand(load_sweeps(file), sweep, profile, overrides), chosen or Slice())
    placement = placement or Placement()
    store = Store(store_dir, read_only=not probe) if store_dir is not None else None
    lines: list[str] = []
    if probe and store is not None:
        device, report = probe_for(cells, store, placement)
        lines = report_lines(report)
    else:
        device = target_device(placement.gpus) if store is not None else None
    plan = make_plan(cells, sweep, profile, store, device=device, cost=cost)
    plan.probe_lines, plan.placement = lines, placement
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
    for (model, dataset), layout in sorted(plan.layouts.items()):
        console.print(f"  {model} × {dataset}: {layout}", highlight=False)
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
        if plan.placement is not None:
            console.print(f"  = {resource_line(total.pending_time_s, plan.placement)}")
    for (model, dataset, batch), (peak, gpu, n) in sorted(plan.packing.items()):
        console.print(
            f"packing: {model} × {dataset} × {batch}: peak {peak / 2**30:.1f} of "
            f"{gpu / 2**30:.0f} GiB, ~{n} trial{'s' if n != 1 else ''} per GPU "
            f"(--gpus-per-trial {1 / n:.3g})"
        )
    order = plan.order_line()
    if order:
        console.print(order, soft_wrap=True)
    for line in plan.probe_lines:
        console.print(line, soft_wrap=True)
    console.print(cost_line(plan), soft_wrap=True)


def cost_line(plan: SweepPlan) -> str:
    """Which cost model the plan's time estimate used (--cost flops|time)."""
    if plan.cost == "flops":
        return (
            "cost: flops — an SA step's extra time = the FLOP model's extra passes × the "
            "measured SA − base step time (--cost time: measured step atoms)"
        )
    pending = plan.total().pending
    return (
        f"cost: time — an SA step's extra time from step atoms measured on this device for "
        f"{plan.atom_cells} of {pending} pending cells (the others: the FLOP model)"
    )

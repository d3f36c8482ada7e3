"""`rstsweep status [SWEEP]`: where sweeps stand, from the store (and a live run's heartbeat).

Which cells a sweep has and each one's state (done, running, failed, pending) come from
`membership.py`; here they are counted by group, summed (passes, steps, time) and rendered.
Reads Parquet and JSON only: no torch, no ray.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rstsweep.core.format import format_count, format_duration
from rstsweep.errors import RstError
from rstsweep.store.store import Store, open_store
from rstsweep.sweeper.live import STATES
from rstsweep.sweeper.membership import cell_rows, cell_states, membership
from rstsweep.sweeper.slices import Slice

if TYPE_CHECKING:
    from rich.console import Console

# The driver rewrites the heartbeat every few seconds; older than this it is a dead run's.
STALE_S = 120.0


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OSError, ValueError, OverflowError, TypeError):
        return False
    return True


def heartbeat_live(beat: dict[str, object] | None, now: float | None = None) -> bool:
    """A heartbeat belongs to a live run: recent, and (on this host) its pid still exists."""
    if not beat:
        return False
    try:
        age = (now if now is not None else time.time()) - float(beat.get("updated_at", 0))
    except (TypeError, ValueError):
        return False
    if age > STALE_S:
        return False
    if beat.get("host") == socket.gethostname():
        return pid_alive(beat.get("pid", -1))
    return True


@dataclass
class GroupStatus:
    group: str
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATES, 0))
    passes: int = 0  # realized forward-backward passes of the done cells: Σ steps·(1 + Δη run)
    steps: int = 0
    train_time_s: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, other: GroupStatus) -> None:
        for k in STATES:
            self.counts[k] += other.counts[k]
        self.passes += other.passes
        self.steps += other.steps
        self.train_time_s += other.train_time_s


@dataclass
class SweepStatus:
    sweep: str
    profiles: list[str]
    source: str  # "sweeps file" | "cells table"
    groups: list[GroupStatus]
    failures: pd.DataFrame  # cell_id, group, attempts, error, failed_at (cells not done)
    # one row per cell: cell_id, group, label, state, settings (the fields that vary across the
    # sweep's cells; empty when the cells come from the cells table), attempts, error
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)

    def total(self) -> GroupStatus:
        out = GroupStatus("total")
        for g in self.groups:
            out.add(g)
        return out


@dataclass
class StoreStatus:
    store: str | Path
    sweeps: list[SweepStatus]
    heartbeat: dict[str, object] | None
    live: bool
    trials: int
    passes: int
    steps: int
    train_time_s: float
    failures: pd.DataFrame


def _classify(
    members: pd.DataFrame, trials: pd.DataFrame, running: set[str], failures: pd.DataFrame
) -> list[GroupStatus]:
    """Per group (in order of first member): cells by state, and the done cells' steps, passes
    and training time. Vectorised: a paper-sized sweep has thousands of members."""
    done = trials[["cell_id", "steps", "realized_extra", "train_time_s"]]
    rows = members[["cell_id", "group"]].merge(done, on="cell_id", how="left", sort=False)
    is_done = rows["cell_id"].isin(set(trials["cell_id"]))
    rows["state"] = cell_states(
        rows["cell_id"], set(trials["cell_id"]), running, set(failures["cell_id"])
    )
    steps = rows["steps"].astype(float).where(is_done, 0.0)
    extra = rows["realized_extra"].astype(float).where(is_done, 0.0)
    # per cell, as `_passes` rounds it (numpy and Python both round half to even)
    rows["passes"] = np.round(steps * (1.0 + extra)).astype(np.int64)
    rows["steps_done"] = steps.astype(np.int64)
    rows["time_done"] = rows["train_time_s"].astype(float).where(is_done, 0.0)
    counts = rows.groupby(["group", "state"], sort=False, dropna=False).size()
    sums = rows.groupby("group", sort=False, dropna=False)[
        ["passes", "steps_done", "time_done"]
    ].sum()
    groups: list[GroupStatus] = []
    for group, total in sums.iterrows():
        g = GroupStatus(group)
        for state in STATES:
            g.counts[state] = int(counts.get((group, state), 0))
        g.passes, g.steps = int(total["passes"]), int(total["steps_done"])
        g.train_time_s = float(total["time_done"])
        groups.append(g)
    return groups


def _open_failures(failures: pd.DataFrame, done: set[str]) -> pd.DataFrame:
    """Failures of cells not (yet) done: one row per cell with its attempt count and last error."""
    cols = ["cell_id", "sweep", "group", "attempts", "error", "failed_at"]
    frame = failures[~failures["cell_id"].isin(done)]
    if frame.empty:
        return pd.DataFrame(columns=cols)
    frame = frame.sort_values("failed_at", kind="stable")
    last = frame.groupby("cell_id", sort=False).tail(1).set_index("cell_id")
    last["attempts"] = frame.groupby("cell_id").size()
    return last.reset_index()[cols].sort_values("failed_at", ascending=False)


@dataclass
class _Tables:
    """The store tables `status` needs, each read once per command."""

    cells: pd.DataFrame
    trials: pd.DataFrame
    failures: pd.DataFrame  # open failures (cells not done)

    @classmethod
    def read(cls, store: Store) -> _Tables:
        trials = store.read("trials")
        failures = _open_failures(store.read("failures"), set(trials["cell_id"]))
        return cls(store.read("cells"), trials, failures)


def sweep_status(
    store: Store,
    sweep: str,
    *,
    file: Path | None = None,
    profile: str | None = None,
    beat: dict | None = None,
    live: bool = False,
    world_size: int | None = None,
    tables: _Tables | None = None,
    chosen: Slice | None = None,
) -> SweepStatus:
    """One sweep's status (of its slice `chosen`); `tables`: the store's tables already read
    (else read here)."""
    t = tables or _Tables.read(store)
    members, profiles, source = membership(
        t.cells, sweep, file, profile, beat, world_size, store.root, chosen
    )
    running = set(beat.get("running", [])) if (live and beat) else set()
    failures = t.failures[t.failures["cell_id"].isin(set(members["cell_id"]))].copy()
    group_of = dict(zip(members["cell_id"], members["group"], strict=True))
    failures["group"] = failures["cell_id"].map(group_of)
    groups = _classify(members, t.trials, running, failures)
    cells = cell_rows(members, set(t.trials["cell_id"]), running, failures)
    return SweepStatus(sweep, profiles, source, groups, failures.reset_index(drop=True), cells)


def collect_status(
    store_dir: str | Path,
    sweep: str | None = None,
    file: Path | None = None,
    profile: str | None = None,
    world_size: int | None = None,
    chosen: Slice | None = None,
) -> StoreStatus:
    """Everything `status` shows. Without a sweep: every sweep recorded in the cells table.
    `world_size`: the cells as `run --world-size` ran them (data-parallel cells have own ids).
    `chosen`: a slice (`--where`, `--seeds`) of the sweep's cells, which then come from `file`.
    Reads each table once, however many sweeps the store holds."""
    if chosen and sweep is None:
        raise RstError("status --where/--seeds: name the sweep (rstsweep status SWEEP --where ...)")
    store = open_store(store_dir, must_exist=sweep is None, read_only=True)
    beat = store.read_heartbeat()
    live = heartbeat_live(beat)
    tables = _Tables.read(store)
    if sweep is not None:
        names = [sweep]
    else:
        names = list(dict.fromkeys(tables.cells["sweep"]))
        if live and beat and beat.get("sweep") and beat["sweep"] not in names:
            names.append(str(beat["sweep"]))
    # The overview trusts the cells table only: an edited YAML must not break it.
    sweeps = [
        sweep_status(
            store,
            name,
            file=file if sweep else None,
            profile=profile if sweep else None,
            beat=beat,
            live=live,
            world_size=world_size if sweep else None,
            tables=tables,
            chosen=chosen if sweep else None,
        )
        for name in names
    ]
    trials = tables.trials
    return StoreStatus(
        store=store.root,
        sweeps=sweeps,
        heartbeat=beat,
        live=live,
        trials=len(trials),
        passes=_passes(
            trials["steps"].sum(),
            (trials["steps"] * trials["realized_extra"]).sum() / max(1, trials["steps"].sum()),
        ),
        steps=int(trials["steps"].sum()),
        train_time_s=float(trials["train_time_s"].sum()),
        failures=tables.failures,
    )


def _passes(steps: float, realized_extra: float) -> int:
    """Forward-backward passes run: steps × (1 + realized Δη), realized Δη counted in pass units
    (`rstsweep.core.passes`; rows from before pass counting: the coin fraction)."""
    return round(float(steps) * (1.0 + float(realized_extra)))


# ----------------------------------------------------------------------------- rendering


def _counts_table(title: str, rows: list[tuple[str, GroupStatus]], total: GroupStatus | None):
    from rich.table import Table

    table = Table(title=title, show_edge=False, title_justify="left")
    # short headers: the table must fit 80 columns
    for name in ("", "cells", *STATES, "passes", "Δη", "time"):
        table.add_column(name, justify="left" if name == "" else "right")
    styles = {"done": "green", "running": "cyan", "failed": "red", "pending": ""}
    items = [*rows, *([("total", total)] if total is not None else [])]
    for i, (name, g) in enumerate(items):
        if total is not None and i == len(items) - 1:
            table.add_section()
        extra = f"{(g.passes - g.steps) / g.steps:.3f}" if g.steps else "-"
        cells = [
            f"[{styles[k]}]{g.counts[k]}[/]" if g.counts[k] and styles[k] else str(g.counts[k])
            for k in STATES
        ]
        time_s = format_duration(g.train_time_s) if g.counts["done"] else "-"
        table.add_row(name, str(g.total), *cells, format_count(g.passes), extra, time_s)
    return table


def print_status(status: StoreStatus, detail: bool) -> None:
    """Render with rich. `detail`: one table per group of each sweep (else one row per sweep)."""
    console = _console()
    beat = status.heartbeat
    if status.live and beat:
        eta = beat.get("eta_s")
        eta_text = f", ETA {format_duration(eta)}" if isinstance(eta, (int, float)) else ""
        console.print(
            f"[cyan]live run[/]: sweep {beat.get('sweep')} ({beat.get('profile')}), pid "
            f"{beat.get('pid')} on {beat.get('host')}, {len(beat.get('running', []))} running"
            f"{eta_text}"
        )
    elif beat:
        console.print(
            f"no live run (last heartbeat: sweep {beat.get('sweep')}, pid {beat.get('pid')})"
        )
    if detail:
        for sw in status.sweeps:
            title = f"{sw.sweep} · profile {', '.join(sw.profiles) or '?'} · cells from {sw.source}"
            rows = [(g.group, g) for g in sw.groups]
            console.print(_counts_table(title, rows, sw.total()))
    elif status.sweeps:
        rows = [(sw.sweep, sw.total()) for sw in status.sweeps]
        console.print(_counts_table(f"sweeps in {status.store}", rows, None))
    else:
        console.print(f"{status.store}: no sweep recorded yet")
    console.print(
        f"store: {status.trials} finished cells, realized compute {format_count(status.passes)} "
        f"forward-backward passes ({format_count(status.steps)} steps + "
        f"{format_count(status.passes - status.steps)} extra passes), "
        f"{format_duration(status.train_time_s)} of training"
    )
    failures = status.sweeps[0].failures if detail and len(status.sweeps) == 1 else status.failures
    _print_failures(console, failures)


def _console() -> Console:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped / captured: do not squeeze tables into 80 columns
        console.width = max(console.width, 120)
    return console


def _print_failures(console: Console, failures: pd.DataFrame, limit: int = 20) -> None:
    if failures.empty:
        return
    from rich.table import Table

    table = Table(title="failed cells (not done)", show_edge=False, title_justify="left")
    for name in ("cell_id", "group", "attempts", "last error"):
        table.add_column(name, overflow="fold")
    for row in failures.head(limit).itertuples(index=False):
        error = str(row.error).strip().splitlines()
        table.add_row(row.cell_id, str(row.group), str(row.attempts), error[-1] if error else "")
    console.print(table)
    if len(failures) > limit:
        console.print(f"... and {len(failures) - limit} more")

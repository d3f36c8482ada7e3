"""`rstsweep status [SWEEP]`: where sweeps stand, from the store (and a live run's heartbeat).

A cell is done when the store has its trials row, running when a live heartbeat lists it, failed
when it has a failure record and is neither, pending otherwise. Sweep membership comes from the
YAML expansion when the sweep and profile are known (so cells never started count as pending), else
from the store's `cells` table. Reads Parquet and JSON only: no torch, no ray.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rstsweep.core.format import format_count, format_duration
from rstsweep.errors import RstError
from rstsweep.store.store import Store, open_store
from rstsweep.sweeper.multi import with_world_size
from rstsweep.sweeper.progress import STATES
from rstsweep.sweeper.slices import Slice, select
from rstsweep.sweeper.spec import expand, load_sweeps

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


def heartbeat_live(beat: dict[str, Any] | None, now: float | None = None) -> bool:
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
    heartbeat: dict[str, Any] | None
    live: bool
    trials: int
    passes: int
    steps: int
    train_time_s: float
    failures: pd.DataFrame


def _membership(
    store: Store,
    sweep: str,
    file: Path | None,
    profile: str | None,
    beat: dict | None,
    world_size: int | None = None,
    chosen: Slice | None = None,
) -> tuple[pd.DataFrame, list[str], str]:
    """(cell_id, group, label, settings) rows of the sweep (of its slice `chosen`), the profiles
    they come from, and where they came from."""
    cells = store.read("cells")
    recorded = cells[cells["sweep"] == sweep]
    if profile is None and beat and beat.get("sweep") == sweep and beat.get("profile"):
        profile = str(beat["profile"])
    if profile is None:
        known = sorted(recorded["profile"].dropna().unique())
        profile = known[0] if len(known) == 1 else None
    # a recorded sweep the file does not declare (`<SWEEP>-search`, from `rstsweep search`) is
    # known from the cells table alone
    use_file = file is not None and file.exists()
    if use_file and not recorded.empty:
        use_file = sweep in load_sweeps(file).sweeps
    if profile is not None and use_file:
        expanded = with_world_size(expand(load_sweeps(file), sweep, profile), world_size)
        expanded = select(expanded, chosen or Slice())
        varying = varying_fields(expanded)
        rows = [
            (c.cell_id, c.group, c.label, {k: getattr(c.config, k) for k in varying})
            for c in expanded
        ]
        return pd.DataFrame(rows, columns=MEMBER_COLUMNS), [profile], "sweeps file"
    if chosen:
        raise RstError(
            f"status --where/--seeds: sweep {sweep!r} needs its sweeps file and profile "
            "(--file, --profile) to know its cells' fields"
        )
    if recorded.empty:
        hint = "" if profile else " and --profile"
        raise RstError(
            f"sweep {sweep!r}: no cells recorded in {store.root}; "
            f"pass --file{hint} to list its cells"
        )
    if profile is not None and profile in set(recorded["profile"]):
        recorded = recorded[recorded["profile"] == profile]
    profiles = sorted(recorded["profile"].dropna().unique())
    members = recorded.drop_duplicates("cell_id")[["cell_id", "group", "label"]].copy()
    members["settings"] = [{} for _ in range(len(members))]
    return members.reset_index(drop=True), profiles, "cells table"


MEMBER_COLUMNS = ["cell_id", "group", "label", "settings"]


def varying_fields(cells: list[Any]) -> list[str]:
    """The CellConfig fields whose value differs between `cells` (a cell's key settings)."""
    if not cells:
        return []
    dumps = [c.config.model_dump() for c in cells]
    return [k for k in dumps[0] if len({repr(d.get(k)) for d in dumps}) > 1]


def cell_state(cell_id: str, done: Any, running: set[str], failed: set[str]) -> str:
    """done (a trials row), running (a live heartbeat lists it), failed (a failure record), or
    pending: the one classification of `status`, its --pending list and the report."""
    if cell_id in done:
        return "done"
    if cell_id in running:
        return "running"
    return "failed" if cell_id in failed else "pending"


def _classify(
    members: pd.DataFrame, trials: pd.DataFrame, running: set[str], failures: pd.DataFrame
) -> list[GroupStatus]:
    done = trials.set_index("cell_id")
    failed_ids = set(failures["cell_id"])
    groups: dict[str, GroupStatus] = {}
    for cell_id, group in members[["cell_id", "group"]].itertuples(index=False, name=None):
        g = groups.setdefault(group, GroupStatus(group))
        state = cell_state(cell_id, done.index, running, failed_ids)
        g.counts[state] += 1
        if state == "done":
            row = done.loc[cell_id]
            g.steps += int(row["steps"])
            g.passes += _passes(row["steps"], row["realized_extra"])
            g.train_time_s += float(row["train_time_s"])
    return list(groups.values())


def _cell_rows(
    members: pd.DataFrame, done: set[str], running: set[str], failures: pd.DataFrame
) -> pd.DataFrame:
    """One row per member cell: its state and, when failed, attempts and last error."""
    last = failures.set_index("cell_id") if len(failures) else None
    failed_ids, rows = set(failures["cell_id"]), []
    for cell_id, group, label, settings in members.itertuples(index=False, name=None):
        state = cell_state(cell_id, done, running, failed_ids)
        failed = last is not None and cell_id in last.index
        attempts = int(last.loc[cell_id, "attempts"]) if failed else 0
        error = str(last.loc[cell_id, "error"]) if failed else ""
        rows.append((cell_id, group, label, state, settings, attempts, error))
    columns = ["cell_id", "group", "label", "state", "settings", "attempts", "error"]
    return pd.DataFrame(rows, columns=columns)


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


def sweep_status(
    store: Store,
    sweep: str,
    *,
    file: Path | None = None,
    profile: str | None = None,
    beat: dict | None = None,
    live: bool = False,
    world_size: int | None = None,
    chosen: Slice | None = None,
) -> SweepStatus:
    members, profiles, source = _membership(store, sweep, file, profile, beat, world_size, chosen)
    trials = store.read("trials")
    running = set(beat.get("running", [])) if (live and beat) else set()
    failures = _open_failures(store.read("failures"), set(trials["cell_id"]))
    failures = failures[failures["cell_id"].isin(set(members["cell_id"]))].copy()
    group_of = dict(zip(members["cell_id"], members["group"], strict=True))
    failures["group"] = failures["cell_id"].map(group_of)
    groups = _classify(members, trials, running, failures)
    cells = _cell_rows(members, set(trials["cell_id"]), running, failures)
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
    `chosen`: a slice (`--where`, `--seeds`) of the sweep's cells, which then come from `file`."""
    store = open_store(store_dir, must_exist=sweep is None, read_only=True)
    beat = store.read_heartbeat()
    live = heartbeat_live(beat)
    if sweep is not None:
        names = [sweep]
    else:
        names = list(dict.fromkeys(store.read("cells")["sweep"]))
        if live and beat and beat.get("sweep") and beat["sweep"] not in names:
            names.append(str(beat["sweep"]))
    if chosen and sweep is None:
        raise RstError("status --where/--seeds: name the sweep (rstsweep status SWEEP --where ...)")
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
            chosen=chosen if sweep else None,
        )
        for name in names
    ]
    trials = store.read("trials")
    failures = _open_failures(store.read("failures"), set(trials["cell_id"]))
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
        failures=failures,
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


def _console() -> Any:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:  # piped / captured: do not squeeze tables into 80 columns
        console.width = max(console.width, 120)
    return console


def _print_failures(console: Any, failures: pd.DataFrame, limit: int = 20) -> None:
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

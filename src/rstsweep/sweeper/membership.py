"""Which cells a sweep has and the state of each: the membership `status`, its `--pending` and
`--json` lists and the report share.

Membership comes from the YAML expansion when the sweep and profile are known (so cells never
started count as pending; a `--where`/`--seeds` slice needs it), else from the store's `cells`
table. A cell is done when the store has its trials row, running when a live heartbeat lists it,
failed when it has a failure record and is neither, pending otherwise (`cell_states`, the one
classification). Reads YAML and DataFrames only: no torch, no ray.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from rstsweep.errors import RstError
from rstsweep.sweeper.multi import with_world_size
from rstsweep.sweeper.slices import Slice, select
from rstsweep.sweeps import Cell, expand, load_sweeps

MEMBER_COLUMNS = ["cell_id", "group", "label", "settings"]
CELL_COLUMNS = ["cell_id", "group", "label", "state", "settings", "attempts", "error"]


def membership(
    cells: pd.DataFrame,
    sweep: str,
    file: Path | None,
    profile: str | None,
    beat: dict | None,
    world_size: int | None = None,
    store_root: object = "",
    chosen: Slice | None = None,
) -> tuple[pd.DataFrame, list[str], str]:
    """(cell_id, group, label, settings) rows of the sweep (of its slice `chosen`), the profiles
    they come from, and where they came from. `cells`: the store's cells table, read once."""
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
        return _expanded_members(select(expanded, chosen or Slice())), [profile], "sweeps file"
    if chosen:
        raise RstError(
            f"status --where/--seeds: sweep {sweep!r} needs its sweeps file and profile "
            "(--file, --profile) to know its cells' fields"
        )
    if recorded.empty:
        hint = "" if profile else " and --profile"
        raise RstError(
            f"sweep {sweep!r}: no cells recorded in {store_root}; "
            f"pass --file{hint} to list its cells"
        )
    if profile is not None and profile in set(recorded["profile"]):
        recorded = recorded[recorded["profile"] == profile]
    profiles = sorted(recorded["profile"].dropna().unique())
    members = recorded.drop_duplicates("cell_id")[["cell_id", "group", "label"]].copy()
    members["settings"] = [{} for _ in range(len(members))]
    return members.reset_index(drop=True), profiles, "cells table"


def _expanded_members(expanded: list[Cell]) -> pd.DataFrame:
    varying = varying_fields(expanded)
    rows = [
        (c.cell_id, c.group, c.label, {k: getattr(c.config, k) for k in varying}) for c in expanded
    ]
    return pd.DataFrame(rows, columns=MEMBER_COLUMNS)


def varying_fields(cells: list[Cell]) -> list[str]:
    """The CellConfig fields whose value differs between `cells` (a cell's key settings)."""
    if not cells:
        return []
    dumps = [c.config.model_dump() for c in cells]
    return [k for k in dumps[0] if len({repr(d.get(k)) for d in dumps}) > 1]


def cell_states(
    cell_ids: pd.Series, done: set[str], running: set[str], failed: set[str]
) -> np.ndarray:
    """done, running, failed or pending for each cell id (vectorised: a paper-sized sweep has
    thousands of members)."""
    return np.select(
        [cell_ids.isin(done), cell_ids.isin(running), cell_ids.isin(failed)],
        ["done", "running", "failed"],
        "pending",
    )


def cell_rows(
    members: pd.DataFrame, done: set[str], running: set[str], failures: pd.DataFrame
) -> pd.DataFrame:
    """One row per member cell: its state and, when failed, attempts and last error.
    `failures`: one row per open failure (`status._open_failures`)."""
    rows = members[MEMBER_COLUMNS].reset_index(drop=True)
    rows["state"] = cell_states(rows["cell_id"], done, running, set(failures["cell_id"]))
    last = failures.drop_duplicates("cell_id", keep="first")[["cell_id", "attempts", "error"]]
    rows = rows.merge(last, on="cell_id", how="left", sort=False)
    failed = rows["attempts"].notna()
    rows["attempts"] = [int(a) if ok else 0 for a, ok in zip(rows["attempts"], failed, strict=True)]
    rows["error"] = [str(e) if ok else "" for e, ok in zip(rows["error"], failed, strict=True)]
    return rows[CELL_COLUMNS]

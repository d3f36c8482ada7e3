"""The Python API (re-exported lazily by `rstsweep/__init__.py`; walk-through in docs/api.md):
`open_store` gives a `ResultStore` whose tables are the deduplicated frames every command reads
(one trials row per done cell, the earliest finished; epochs and draws of that row's attempt only:
the rules of `store.store.Store.read`), plus SQL through DuckDB when it is installed;
`load_sweeps`, `plan` and `run` are the functions the `plan`/`run` commands call, with the same
sweeps-file default (`core.shipped`). Importing this module imports pandas but neither torch nor
ray; `run` needs `rstsweep[run]` and says so in one line when it is missing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rstsweep.core.extras import require_extra
from rstsweep.core.shipped import resolve_sweeps_file
from rstsweep.errors import RstError
from rstsweep.plugins import load_plugins
from rstsweep.store.store import Store
from rstsweep.store.store import open_store as _open
from rstsweep.sweeps import load_sweeps as _load

if TYPE_CHECKING:
    from rstsweep.sweeper.plan import SweepPlan
    from rstsweep.sweeps import SweepsFile

SQL_TABLES = ("trials", "epochs", "draws", "cells", "failures")  # views `sql()` queries see


class ResultStore:
    """A result store read as pandas frames. Each call reads the store afresh, so a notebook
    sees the cells a live `run` adds; `store` is the underlying `Store`."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"ResultStore({str(self.store.root)!r})"

    def trials(self) -> pd.DataFrame:
        """One row per done cell (its final metrics, config_json, realized extra compute)."""
        return self.store.read("trials")

    def epochs(self, cell_id: str | None = None) -> pd.DataFrame:
        """Per-epoch rows of the done cells (or of one cell), ordered by cell and epoch."""
        frame = self.store.read("epochs")
        if cell_id is None:
            return frame
        return frame[frame["cell_id"] == cell_id].reset_index(drop=True)

    def draws(self, cell_id: str) -> pd.DataFrame:
        """The coin draws of one done cell: columns `step` and `x` (X_t, whether step t was
        sharpness-aware), and `signal` (‖g_t‖², what a closed-loop policy saw) where recorded."""
        x = self.store.draws_of(cell_id)
        if x is None:
            raise RstError(f"cell_id {cell_id}: no draws in {self.store.root} (not a done cell)")
        frame = pd.DataFrame({"step": np.arange(len(x)), "x": x})
        signal = self.store.signal_of(cell_id)
        if signal is not None and len(signal) == len(x):
            frame["signal"] = signal
        return frame

    def cells(self, sweep: str | None = None) -> pd.DataFrame:
        """Sweep membership (sweep, group, label, x, cell_id, profile, figure/table tags), of
        one sweep or all; a cell shared by several sweeps has one row in each."""
        frame = self.store.read("cells")
        if sweep is None:
            return frame
        return frame[frame["sweep"] == sweep].reset_index(drop=True)

    def failures(self) -> pd.DataFrame:
        """Crashed attempts (cell_id, error, when); their cells stay pending until re-run."""
        return self.store.read("failures")

    def sql(self, query: str) -> pd.DataFrame:
        """Run a DuckDB SQL query over the deduplicated tables, visible as views named
        trials, epochs, draws, cells and failures. Needs `rstsweep[sql]` (duckdb)."""
        require_extra("sql", "ResultStore.sql()")
        import duckdb

        con = duckdb.connect()
        try:
            for name in SQL_TABLES:
                con.register(name, self.store.read(name))
            return con.execute(query).df()
        finally:
            con.close()


def open_store(path_or_uri: str | os.PathLike[str]) -> ResultStore:
    """The result store at a directory or an `s3://` / `gs://` URI, read-only; RstError if there
    is none."""
    return ResultStore(_open(path_or_uri, must_exist=True, read_only=True))


def load_sweeps(file: str | os.PathLike[str] | None = None) -> SweepsFile:
    """The sweeps file, validated (`SweepsFile`: `.profiles`, `.sweeps`): `file`, else
    ./sweeps.yaml, else the paper's grids shipped with rstsweep. Plugins are loaded first."""
    load_plugins()
    return _load(resolve_sweeps_file(file))


def plan(
    sweep: str,
    *,
    file: str | os.PathLike[str] | None = None,
    profile: str = "paper",
    store: str | os.PathLike[str] | None = "results",
    overrides: Mapping[str, object] | None = None,
    probe: bool = False,
) -> SweepPlan:
    """The `rstsweep plan` computation (`SweepPlan`: groups with cells, done, pending, passes,
    estimated time). `probe=True` times unmeasured settings first (needs `rstsweep[run]`)."""
    from rstsweep.sweeper.plan import plan_sweep

    load_plugins()
    if probe:
        require_extra("run", "plan(probe=True)")
    path = resolve_sweeps_file(file)
    return plan_sweep(path, sweep, profile, store, dict(overrides or {}), probe=probe)


def run(
    sweep: str,
    *,
    file: str | os.PathLike[str] | None = None,
    profile: str = "paper",
    store: str | os.PathLike[str] = "results",
    overrides: Mapping[str, object] | None = None,
    trackers: list[str] | None = None,
    **options: Any,
) -> int:
    """`rstsweep run`: train the sweep's cells not yet in `store` through Ray Tune. `options`
    are `RunOptions` fields (cpus_per_trial, max_concurrent, num_cpus, data_dir, probe, ...).
    Returns the command's exit code: 0 all done, 1 some cells failed or were interrupted."""
    from rstsweep.sweeper.options import RunOptions  # no ray: the options are checked first

    unknown = sorted(set(options) - set(RunOptions.__dataclass_fields__))
    if unknown:
        raise RstError(f"run(): unknown option {unknown[0]!r}")
    require_extra("run", "rstsweep.run()")
    load_plugins()
    from rstsweep.sweeper.driver import run_command
    from rstsweep.sweeper.trackers import parse_trackers

    options.setdefault("progress", False)  # a notebook is no terminal
    opts = RunOptions(
        sweep=sweep,
        file=resolve_sweeps_file(file),
        profile=profile,
        store=str(store),
        overrides=dict(overrides or {}),
        trackers=parse_trackers(trackers),
        **options,
    )
    return run_command(opts)


__all__ = ["ResultStore", "load_sweeps", "open_store", "plan", "run"]

"""The Parquet result store: immutable part files, crash-safe writes, deduped reads.

A store is a directory (or an object-store prefix: `s3://bucket/prefix`, `gs://...`, see
`store.location`) with one sub-directory per table of `schema.TABLES` (`trials`, `epochs`,
`draws`, `cells`, `failures`, `probes`) plus `heartbeat.json`. Every write is a new Parquet file:
locally written under a dot-prefixed temporary name, fsynced, `os.replace`d into place and the
directory fsynced; on an object store uploaded to its final, unique key in one piece. A reader
never sees half a file, and plain `pd.read_parquet("<store>/trials")` works (pyarrow skips dot
files). `open_store` is the one entry point of the commands (it owns the "no result store here"
error).

Done marker: `write_result` writes the cell's epochs and draws first and its `trials` row last; all
three carry the same fresh `attempt_id`. Readers keep one trials row per cell (the earliest
finished) and only the epochs/draws rows of that row's attempt, so a kill between the writes, a
cell re-run after a driver kill, or a compaction interrupted before it removed the old files never
shows a duplicate or an orphan.

Staying fast: a run writes three parts per finished cell; its writer calls `compact_if_due` after
each result, which merges a table's small parts once they pile up (`store.compaction`: tiered,
crash-safe), and `compact` at the end. Reads are cached per `Store` keyed by the table's part
listing (parts are immutable: the same listing means the same rows), so a command that asks for a
table several times reads it once and still sees a part added meanwhile.

Pure pandas/pyarrow/numpy: no torch, no ray (analysis imports this module).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from rstsweep.core.result import TrainResult
from rstsweep.errors import RstError
from rstsweep.store import compaction
from rstsweep.store.files import is_missing_file, part_files, read_files, write_part
from rstsweep.store.location import Location
from rstsweep.store.rows import (
    cell_rows,
    draws_row,
    epoch_rows,
    failure_row,
    trial_row,
    unpack_draws,
    unpack_signal,
)
from rstsweep.store.schema import KEYS, TABLES
from rstsweep.sweeps.cell import Cell

HEARTBEAT = "heartbeat.json"


def open_store(
    location: str | os.PathLike[str], *, must_exist: bool, read_only: bool = False
) -> Store:
    """The store at `location` (a path or an s3:// / gs:// URI). `must_exist`: RstError unless
    it is there (the commands that only read); otherwise the first write creates it."""
    store = Store(location, read_only=read_only)
    if must_exist and not store.location.exists():
        raise RstError(f"{store.location.text}: no result store here (pass --store DIR)")
    return store


def object_scratch_root(uri: str) -> Path:
    """The local scratch directory of an object-store location (named after its URI; computed
    without opening the object store)."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in uri)
    return Path(tempfile.gettempdir()) / "rstsweep-scratch" / safe


class Store:
    """A result store. Creating a Store touches nothing; the first write creates it.

    `root`: the local directory as a Path, or the URI string of an object-store location."""

    def __init__(self, root: str | os.PathLike[str] | Location, *, read_only: bool = False) -> None:
        self.location = root if isinstance(root, Location) else Location.parse(root)
        text = self.location.text
        self.root: Path | str = Path(text) if self.location.local else text
        self.read_only = read_only
        self._done_by_file: dict[str, frozenset[str]] = {}
        # table -> (the part listing it was read from, the frame read)
        self._cache: dict[str, tuple[tuple[str, ...], pd.DataFrame]] = {}
        self._fresh: dict[str, int] = {}  # level-0 parts written since this table was checked

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    @property
    def is_local(self) -> bool:
        return self.location.local

    def scratch_root(self) -> Path:
        """Local scratch for Ray Tune and trial work dirs: `<store>/.scratch` for a local store;
        for an object store a directory under the system temp dir named after the URI (a
        multi-node cluster passes `--scratch` on a shared filesystem either way)."""
        if self.location.local:
            return Path(self.root) / ".scratch"
        return object_scratch_root(self.location.text)

    # -- writing

    def _check_writable(self) -> None:
        if self.read_only:
            raise PermissionError(f"store {self.root} is opened read-only")

    def _write(self, name: str, rows: list[dict[str, object]]) -> str | None:
        self._check_writable()
        if not rows:
            return None
        self._fresh[name] = self._fresh.get(name, 0) + 1
        return write_part(self.location, name, pa.Table.from_pylist(rows, schema=TABLES[name]))

    def write_table(self, name: str, table: pa.Table) -> str | None:
        """Write a whole arrow table (declared schema) as one new part of table `name`."""
        self._check_writable()
        if not table.num_rows:
            return None
        self._fresh[name] = self._fresh.get(name, 0) + 1
        return write_part(self.location, name, table.cast(TABLES[name]))

    def write_result(
        self,
        cell: Cell,
        result: TrainResult,
        profile: str | None = None,
        *,
        skip_if_done: bool = True,
    ) -> str | None:
        """Record a finished cell: epochs and draws first, the `trials` row (done marker) last.

        Returns the new attempt_id, or None if the cell was already done and `skip_if_done`.
        """
        if skip_if_done and cell.cell_id in self.done_ids():
            return None
        attempt = uuid.uuid4().hex
        self._write("epochs", epoch_rows(cell.cell_id, attempt, result))
        self._write("draws", [draws_row(cell.cell_id, attempt, result.draws, result.signals)])
        path = self._write("trials", [trial_row(cell, result, profile, attempt)])
        if path is not None:
            self._done_by_file[path] = frozenset({cell.cell_id})
        return attempt

    def write_failure(self, cell: Cell, error: str) -> None:
        """Record a crashed attempt (the cell stays pending and is retried by the next run)."""
        self._write("failures", [failure_row(cell, error)])

    def write_probes(self, rows: list[dict[str, object]]) -> None:
        """Record step-cost probes (`schema.PROBES` rows), one part file per call."""
        self._write("probes", rows)

    def record_cells(self, cells: Iterable[Cell], profile: str | None) -> int:
        """Record sweep membership (which cells a sweep/group holds); writes only new rows.

        Returns the number of new rows written.
        """
        rows = cell_rows(cells, profile)
        known = self.read("cells")
        key = KEYS["cells"]
        seen = set(known[key].itertuples(index=False, name=None)) if len(known) else set()
        new = [r for r in rows if tuple(r[k] for k in key) not in seen]
        self._write("cells", new)
        return len(new)

    # -- reading

    def read(self, table: str, columns: list[str] | None = None) -> pd.DataFrame:
        """A table as a DataFrame, deduplicated (see module docstring); empty with the right columns
        if the store or table does not exist. A copy: callers may change it."""
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
        if table in ("epochs", "draws"):
            frame = self._read_attempt_rows(table)
        else:
            frame = self._read_deduped(table)
        return (frame[columns] if columns else frame).copy()

    def _listed_read(self, table: str) -> tuple[tuple[str, ...], pd.DataFrame | None, pa.Table]:
        """(the part listing, the cached frame of that listing or None, the rows read if not
        cached); re-lists when a concurrent compaction removed a listed part meanwhile."""
        for attempt in range(5):
            files = tuple(part_files(self.location, table))
            hit = self._cache.get(table)
            if hit is not None and hit[0] == files:
                return files, hit[1], TABLES[table].empty_table()
            try:
                return files, None, read_files(self.location, list(files), TABLES[table])
            except OSError as exc:  # FileNotFoundError, or pyarrow's text for a missing file
                if attempt == 4 or not is_missing_file(exc):
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")

    def _read_deduped(self, table: str) -> pd.DataFrame:
        files, cached, rows = self._listed_read(table)
        if cached is not None:
            return cached
        frame = compaction.dedupe(table, rows).to_pandas()
        if table == "trials":
            frame = legacy_pass_counts(frame)
        self._cache[table] = (files, frame)
        return frame

    def _read_attempt_rows(self, table: str) -> pd.DataFrame:
        """Rows of `table` that belong to a trials row's attempt (cached on both listings)."""
        trials = self._read_deduped("trials")[["cell_id", "attempt_id"]]
        trials_key = self._cache["trials"][0]
        frame = self._read_deduped(table)
        key = (*self._cache[table][0], "|", *trials_key)
        hit = self._cache.get(table + "|joined")
        if hit is not None and hit[0] == key:
            return hit[1]
        frame = frame.merge(trials, on=["cell_id", "attempt_id"], how="inner")
        if table == "epochs":
            frame = frame.sort_values(["cell_id", "epoch"], kind="stable")
        frame = frame.reset_index(drop=True)
        self._cache[table + "|joined"] = (key, frame)
        return frame

    def done_ids(self) -> set[str]:
        """cell_ids with a trials row. Incremental: part files are immutable, each is read once."""
        files = part_files(self.location, "trials")
        for stale in set(self._done_by_file) - set(files):  # removed by a compaction
            del self._done_by_file[stale]
        for f in files:
            if f not in self._done_by_file:
                try:
                    col = read_files(self.location, [f], TABLES["trials"], ["cell_id"])
                except FileNotFoundError:
                    continue  # compacted away meanwhile; its rows live in the merged file
                self._done_by_file[f] = frozenset(col.column("cell_id").to_pylist())
        return set().union(*self._done_by_file.values()) if self._done_by_file else set()

    def draws_of(self, cell_id: str) -> np.ndarray | None:
        """The coin draws X_t of a done cell, or None."""
        return draws_in(self.read("draws"), cell_id)

    def signal_of(self, cell_id: str) -> np.ndarray | None:
        """The per-step signal ‖g_t‖² a policy cell saw, or None (schedules, pending cells)."""
        frame = self.read("draws")
        hit = frame[frame["cell_id"] == cell_id]
        if hit.empty or "signal" not in hit:
            return None
        value = hit["signal"].iloc[0]
        return unpack_signal(value) if isinstance(value, bytes) else None

    # -- heartbeat

    def write_heartbeat(self, state: dict[str, object]) -> None:
        """Atomically replace heartbeat.json. Fills pid, host and updated_at unless given.

        Expected keys (by convention): pid, host, sweep, profile, started_at, running (list of
        cell_ids), updated_at (UNIX seconds).
        """
        self._check_writable()
        payload = {"pid": os.getpid(), "host": socket.gethostname(), **state}
        payload["updated_at"] = state.get("updated_at", time.time())
        text = json.dumps(payload, default=str).encode()
        self.location.write(self.location.path(HEARTBEAT), lambda handle: handle.write(text))

    def read_heartbeat(self) -> dict[str, object] | None:
        """The last heartbeat, or None if absent/unreadable."""
        try:
            data = self.location.read_bytes(self.location.path(HEARTBEAT))
            return json.loads(data) if data else None
        except (OSError, ValueError):
            return None

    def clear_heartbeat(self) -> None:
        """Remove the heartbeat (a driver calls this when it ends cleanly)."""
        self.location.delete(self.location.path(HEARTBEAT))

    # -- maintenance

    def compact(self, tables: Iterable[str] | None = None) -> dict[str, tuple[int, int]]:
        """Merge each table's part files into one new file, then remove the old ones
        (`store.compaction`: a kill at any moment loses and duplicates nothing).

        Rows are kept (exact duplicates by key dropped), including epochs/draws of attempts that
        have no trials row yet: a live driver may be between its epochs and trials writes.
        Returns {table: (files before, files after)}.
        """
        self._check_writable()
        report = {name: compaction.compact_all(self.location, name) for name in tables or TABLES}
        self._fresh.clear()
        return report

    def compact_if_due(self) -> int:
        """The live writer's compaction, called after each result: merge the small parts of the
        tables this Store wrote `COMPACT_AFTER` parts of since it last looked (and, on the first
        call, of every table: a killed run may have left many). Returns the merges done."""
        self._check_writable()
        merges = 0
        for name in TABLES:
            fresh = self._fresh.get(name)
            if fresh is None or fresh >= compaction.COMPACT_AFTER:
                merges += compaction.compact_tiers(self.location, name)
                # level-0 parts left (another writer's, or fewer than due): they count too
                left = part_files(self.location, name)
                self._fresh[name] = sum(compaction.level_of(p) == 0 for p in left)
        return merges


def legacy_pass_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """Rows written before passes were counted have no `sa_fraction` and a `realized_extra` that
    is the coin fraction ΣX_t/T: take sa_fraction from it and flag them in `extra_from_coins`
    (their realized_extra then counts every SA step as one full pass)."""
    legacy = trials["sa_fraction"].isna()
    trials = trials.assign(extra_from_coins=legacy)
    trials.loc[legacy, "sa_fraction"] = trials.loc[legacy, "realized_extra"]
    return trials


def draws_in(draws: pd.DataFrame, cell_id: str) -> np.ndarray | None:
    """X_0..X_{T-1} of `cell_id` from a `draws` table already read (None if it has no row), so
    a reader drawing many cells reads the table once."""
    hit = draws[draws["cell_id"] == cell_id]
    if hit.empty:
        return None
    return unpack_draws(hit["bits"].iloc[0], int(hit["steps"].iloc[0]))


def read_table(root: str | os.PathLike[str] | Store, name: str) -> pd.DataFrame:
    """Read one deduplicated table of the store at `root` (empty frame if it does not exist)."""
    return (root if isinstance(root, Store) else Store(root, read_only=True)).read(name)

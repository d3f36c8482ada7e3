"""Compaction of a store table: many small immutable part files merged into few, crash-safe.

Every write adds a part (a run writes three per finished cell), and a read costs one open per part
(one request on an object store), so a store that is never compacted slows down as it fills. A
merge reads its input parts, drops rows whose key repeats (`schema.KEYS`; `trials` keeps the
earliest finished row of a cell, as readers do) and, in `epochs` and `draws`, the rows of attempts
superseded by another attempt's trials row (`drop_superseded`), writes the result as ONE new part
(the same whole-file write as any part) and only then deletes the inputs. A kill at any moment
therefore leaves either the inputs alone, or the merged part plus the inputs not yet deleted: the
same rows twice, which every reader drops by key and the next merge removes. No row is lost,
because an input is deleted only after its rows are durable in the merged part; a reader that
listed a part a merge has since deleted re-lists (`Store.read`) and finds its rows in the merged
one.

Levels (tiered merging, as in LSM trees): a writer's part is level 0
(`part-<time>-<uuid>.parquet`); a merge of level-k parts writes level k+1 (`...-L1.parquet`).
The live run (`Store.compact_if_due`) merges a table's level-0 parts once there are
`COMPACT_AFTER` of them and level-k parts once there are `COMPACT_FANOUT`, so a row is rewritten
about log_FANOUT(cells / COMPACT_AFTER) times in all (not once per merge) and a table keeps at most
~COMPACT_AFTER + COMPACT_FANOUT per level parts while a run writes. `rstsweep compact` and the end
of every run merge all of a table's parts into one (`compact_all`). Pure pyarrow.
"""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rstsweep.store.files import is_missing_file, part_files, read_files, write_part
from rstsweep.store.location import Location
from rstsweep.store.schema import KEYS, TABLES

# Level-0 parts of one table the live run lets accumulate before merging them: reading 64 small
# parts costs ~0.1 s locally, and a merge then rewrites only 64 cells' rows.
COMPACT_AFTER = 64
# Parts of one level k >= 1 before they merge into one of level k + 1.
COMPACT_FANOUT = 8

_LEVEL = re.compile(r"-L(\d+)\.parquet$")


def level_of(path: str) -> int:
    """The level of a part from its name (a writer's part: 0)."""
    found = _LEVEL.search(path)
    return int(found.group(1)) if found else 0


def dedupe(name: str, table: pa.Table) -> pa.Table:
    """Drop rows whose key repeats, keeping file order; `trials` keeps the earliest finished row
    of a cell (stable: ties keep file order). Stays in arrow, so nullable ints and timestamps
    round-trip exactly and a large epochs table is never turned into Python strings."""
    if table.num_rows < 2:
        return table
    order = np.arange(table.num_rows)
    if name == "trials":  # pc.sort_indices is stable; nulls last, as pandas sorts them
        order = pc.sort_indices(table, [("finished_at", "ascending")]).to_numpy()
    keys = (
        table.select(KEYS[name])
        .take(pa.array(order))
        .append_column("_rank", pa.array(np.arange(table.num_rows)))
    )
    first = keys.group_by(KEYS[name], use_threads=False).aggregate([("_rank", "min")])
    keep = np.sort(order[first.column("_rank_min").to_numpy()])
    if keep.size == table.num_rows:
        return table
    return table.take(pa.array(keep, type=pa.int64()))


def drop_superseded(location: Location, name: str, table: pa.Table) -> pa.Table:
    """`epochs`/`draws`: drop the rows of attempts no reader can ever see. A reader keeps the rows
    of the attempt of a cell's trials row, the earliest finished one, which no later write changes;
    so once a cell has a trials row, its other attempts' rows (a run killed between writing them
    and its trials row, then the cell run again) are dead. Rows of cells without a trials row stay:
    their attempt may still be writing. Without this, raw Parquet would keep them for good."""
    if name not in ("epochs", "draws") or table.num_rows == 0:
        return table
    trials = _trials_rows(location)
    if trials.num_rows == 0:
        return table
    kept = dedupe("trials", trials)
    done = pc.is_in(table["cell_id"], value_set=kept["cell_id"])
    pair = pc.binary_join_element_wise(table["cell_id"], table["attempt_id"], "/")
    kept_pairs = pc.binary_join_element_wise(kept["cell_id"], kept["attempt_id"], "/")
    live = pc.is_in(pair, value_set=kept_pairs.drop_null())
    # a row stays unless its cell is done under another attempt (no attempt_id: kept, unknown)
    keep = pc.or_kleene(pc.invert(done), pc.fill_null(live, True))
    return table if pc.all(keep).as_py() else table.filter(keep)


def _trials_rows(location: Location) -> pa.Table:
    """cell_id, attempt_id and finished_at of every trials part (re-listed if a concurrent merge
    removed one meanwhile)."""
    columns = ["cell_id", "attempt_id", "finished_at"]
    for attempt in range(5):
        try:
            return read_files(location, part_files(location, "trials"), TABLES["trials"], columns)
        except OSError as exc:
            if attempt == 4 or not is_missing_file(exc):
                raise
    raise AssertionError("unreachable")


def merge(location: Location, name: str, files: list[str], level: int) -> str | None:
    """Merge `files` of table `name` into one part of `level`, then delete them (see the module
    docstring for why a kill anywhere in here is safe). Returns the new part, or None when an
    input vanished meanwhile (another process merged it: its rows are in that merge's part)."""
    try:
        rows = read_files(location, files, TABLES[name])
    except OSError as exc:  # FileNotFoundError, or pyarrow's message for a missing file
        if is_missing_file(exc):
            return None
        raise
    merged = write_part(location, name, drop_superseded(location, name, dedupe(name, rows)), level)
    for path in files:
        location.delete(path)
    location.sync_dir(name)
    return merged


def compact_tiers(
    location: Location, name: str, *, after: int | None = None, fanout: int | None = None
) -> int:
    """Merge the levels of table `name` that are due (see the module docstring), lowest first,
    cascading; returns the number of merges."""
    after = COMPACT_AFTER if after is None else after  # read now: tests lower them
    fanout = COMPACT_FANOUT if fanout is None else fanout
    merges = 0
    while True:
        by_level: dict[int, list[str]] = {}
        for path in part_files(location, name):
            by_level.setdefault(level_of(path), []).append(path)
        due = [
            lv for lv, fs in sorted(by_level.items()) if len(fs) >= (after if lv == 0 else fanout)
        ]
        if not due:
            return merges
        if merge(location, name, by_level[due[0]], due[0] + 1) is None:
            return merges
        merges += 1


def compact_all(location: Location, name: str) -> tuple[int, int]:
    """Merge every part of table `name` into one; returns (parts before, parts after)."""
    files = part_files(location, name)
    if len(files) >= 2:
        merge(location, name, files, max(level_of(f) for f in files) + 1)
    return len(files), len(part_files(location, name))

"""Part files of the result store: unique immutable names, whole-file writes, schema-aware reads.

Every table of a store is a directory (or object prefix) of Parquet part files under a
`Location`. A part is written once (`Location.write`: atomic rename locally, one upload on object
stores) and never changed; readers list the visible parts (dot and underscore files are
temporaries) and read them with the table's declared schema, so files written before an additive
schema change read their new columns as nulls. A part that cannot be read (truncated, corrupt, or
with incompatible types) raises `CorruptPartError` naming it: one line and exit 2 in every
command, never a traceback and never a silent skip (`rstsweep verify --repair` quarantines it).
Pure pyarrow.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from rstsweep.errors import RstError
from rstsweep.store.location import Location, first_line

PART_SUFFIX = ".parquet"


class CorruptPartError(RstError):
    """A part file that pyarrow cannot read under its table's schema."""

    def __init__(self, location: Location, path: str, reason: str) -> None:
        self.path = path
        super().__init__(
            f"{location.display(path)}: unreadable Parquet part file ({reason}); "
            "`rstsweep verify --repair` moves it to .quarantine/"
        )


def utc_now() -> datetime:
    """Now in UTC, to the second (the resolution of the store's timestamps)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def _part_name() -> str:
    # Time first so a directory listing is roughly chronological; uuid so writers never collide.
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    return f"part-{stamp}-{uuid.uuid4().hex[:12]}{PART_SUFFIX}"


def write_part(location: Location, table_name: str, table: pa.Table) -> str:
    """Write `table` as a new part file of `table_name`; returns its path."""
    path = location.path(table_name, _part_name())
    return location.write(path, lambda handle: pq.write_table(table, handle))


def part_files(location: Location, table_name: str) -> list[str]:
    """The visible part files of a table, sorted by name (so roughly by time)."""
    return location.list_files(table_name, suffix=PART_SUFFIX)


def read_files(
    location: Location, files: list[str], schema: pa.Schema, columns: list[str] | None = None
) -> pa.Table:
    """The rows of `files` under `schema` (only `columns` if given); CorruptPartError names the
    first unreadable file."""
    if not files:
        table = schema.empty_table()
        return table.select(columns) if columns else table
    try:
        # An explicit schema makes files written before an additive schema change read as nulls.
        dataset = ds.dataset(files, schema=schema, format="parquet", filesystem=location.fs)
        return dataset.to_table(columns=columns)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        if _is_missing_file(exc):
            raise
        bad, reason = _first_bad(location, files, schema) or (files[0], first_line(exc))
        raise CorruptPartError(location, bad, reason) from None


def check_part(location: Location, path: str, schema: pa.Schema) -> str | None:
    """Why `path` cannot be read as a part of a table with `schema`, or None if it reads."""
    try:
        ds.dataset([path], schema=schema, format="parquet", filesystem=location.fs).to_table()
        # the declared schema reads any file as nulls: also check the file's own footer
        pq.read_metadata(path, filesystem=location.fs)
    except FileNotFoundError:
        return "vanished while being read"
    except (pa.ArrowException, OSError) as exc:
        return first_line(exc)
    return None


def _first_bad(location: Location, files: list[str], schema: pa.Schema) -> tuple[str, str] | None:
    for path in files:
        reason = check_part(location, path, schema)
        if reason is not None:
            return path, reason
    return None


def read_table_files(
    location: Location, table_name: str, schema: pa.Schema, columns: list[str] | None = None
) -> pa.Table:
    """All rows of a table; re-lists if a concurrent compaction removed a file meanwhile."""
    for attempt in range(5):
        try:
            return read_files(location, part_files(location, table_name), schema, columns)
        except (FileNotFoundError, OSError) as exc:
            if attempt == 4 or not _is_missing_file(exc):
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def _is_missing_file(exc: BaseException) -> bool:
    text = str(exc)
    missing = "No such file" in text or "Path does not exist" in text
    return isinstance(exc, FileNotFoundError) or missing

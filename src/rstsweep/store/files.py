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

import uuid
from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from rstsweep.errors import RstError
from rstsweep.store.location import Location, first_line

PART_SUFFIX = ".parquet"
# Parts read at once from an object store: each part is a few small requests whose latency, not
# bandwidth, is the cost, so many in flight (locally pyarrow's default of 4 keeps up with the disk).
OBJECT_READAHEAD = 64


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


def _part_name(level: int = 0) -> str:
    # Time first so a directory listing is roughly chronological; uuid so writers never collide;
    # a compaction level > 0 as `-L<k>` (`store.compaction`).
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    tier = f"-L{level}" if level else ""
    return f"part-{stamp}-{uuid.uuid4().hex[:12]}{tier}{PART_SUFFIX}"


def write_part(location: Location, table_name: str, table: pa.Table, level: int = 0) -> str:
    """Write `table` as a new part file of `table_name` (a merge of `level`); returns its path."""
    path = location.path(table_name, _part_name(level))
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
        return _dataset(location, files, schema).to_table(
            columns=columns, **({} if location.local else {"fragment_readahead": OBJECT_READAHEAD})
        )
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        if is_missing_file(exc):
            raise
        bad, reason = _first_bad(location, files, schema) or (files[0], first_line(exc))
        raise CorruptPartError(location, bad, reason) from None


def _dataset(location: Location, files: list[str], schema: pa.Schema) -> ds.Dataset:
    """The parts as one dataset; an explicit schema makes files written before an additive schema
    change read as nulls. On object stores each part gets the size its listing saw (no HEAD per
    part), and pyarrow's I/O pool is widened so the parts are fetched in parallel."""
    if location.local:
        return ds.dataset(files, schema=schema, format="parquet", filesystem=location.fs)
    pa.set_io_thread_count(max(pa.io_thread_count(), OBJECT_READAHEAD // 2))
    fmt = ds.ParquetFileFormat()
    fragments = [fmt.make_fragment(f, location.fs, file_size=location.known_size(f)) for f in files]
    return ds.FileSystemDataset(fragments, schema, fmt, location.fs)


def check_part(location: Location, path: str, schema: pa.Schema) -> str | None:
    """Why `path` cannot be read as a part of a table with `schema`, or None if it reads."""
    try:
        # streamed batch by batch: a merged part can hold a whole table
        for _ in ds.dataset(
            [path], schema=schema, format="parquet", filesystem=location.fs
        ).to_batches():
            pass
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


def is_missing_file(exc: BaseException) -> bool:
    text = str(exc)
    missing = "No such file" in text or "Path does not exist" in text
    return isinstance(exc, FileNotFoundError) or missing

"""Part files of the result store: unique immutable names, atomic writes, schema-aware reads.

Every table of a store is a directory of Parquet part files. A part is written once (through
`rstsweep.core.atomic.atomic_write`) and never changed; readers list the visible parts (dot and
underscore files are temporaries) and read them with the table's declared schema, so files written
before an additive schema change read their new columns as nulls. Pure pyarrow.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from rstsweep.core.atomic import atomic_write


def utc_now() -> datetime:
    """Now in UTC, to the second (the resolution of the store's timestamps)."""
    return datetime.now(timezone.utc).replace(microsecond=0)


def _part_name() -> str:
    # Time first so a directory listing is roughly chronological; uuid so writers never collide.
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    return f"part-{stamp}-{uuid.uuid4().hex[:12]}.parquet"


def write_parquet_atomic(table: pa.Table, directory: Path) -> Path:
    """Write `table` as a new part file in `directory` (temp name, fsync, rename, fsync dir)."""
    return atomic_write(
        Path(directory) / _part_name(), lambda handle: pq.write_table(table, handle)
    )


def part_files(directory: Path) -> list[Path]:
    """The visible part files of a table directory (dot/underscore files are temporaries)."""
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.suffix == ".parquet" and not p.name.startswith((".", "_")) and p.is_file()
    )


def read_files(files: list[Path], schema: pa.Schema, columns: list[str] | None) -> pa.Table:
    """The rows of `files` under `schema` (only `columns` if given)."""
    if not files:
        table = schema.empty_table()
        return table.select(columns) if columns else table
    # An explicit schema makes files written before an additive schema change read as nulls.
    dataset = ds.dataset([str(f) for f in files], schema=schema, format="parquet")
    return dataset.to_table(columns=columns)


def read_directory(
    directory: Path, schema: pa.Schema, columns: list[str] | None = None
) -> pa.Table:
    """All rows of a table directory; re-lists if a concurrent compaction removed a file."""
    for attempt in range(5):
        try:
            return read_files(part_files(directory), schema, columns)
        except (FileNotFoundError, OSError) as exc:
            if attempt == 4 or not _is_missing_file(exc):
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def _is_missing_file(exc: BaseException) -> bool:
    return isinstance(exc, FileNotFoundError) or "No such file" in str(exc)

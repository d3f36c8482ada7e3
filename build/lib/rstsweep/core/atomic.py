"""The one atomic-write helper: every file rstsweep writes in place (Parquet parts, checkpoints,
heartbeats, markers) goes through `atomic_write`, so a reader sees the old file or the new one,
never half a file, even when the writer is SIGKILLed mid-write.

Plain Python (no torch, no pyarrow): callers pass a function that writes to the open handle.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

TMP_PREFIX = ".tmp-"  # readers of a directory skip dot files, so temporaries are never seen


def fsync_dir(directory: str | os.PathLike[str]) -> None:
    """Flush a directory entry: a rename is durable only once its directory is (POSIX)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # some filesystems cannot open directories; the rename is still atomic
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Write `path` through `write(handle)`: temp file in the same directory, fsync, rename, fsync
    of the directory. The temporary is removed if `write` raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """`atomic_write` of a UTF-8 text."""
    return atomic_write(path, lambda handle: handle.write(text.encode()))


def remove_stale_temporaries(directory: str | os.PathLike[str], name: str) -> None:
    """Delete the temporaries a killed writer of `name` left in `directory` (never real files)."""
    for stale in Path(directory).glob(f"{TMP_PREFIX}{name}-*"):
        stale.unlink(missing_ok=True)

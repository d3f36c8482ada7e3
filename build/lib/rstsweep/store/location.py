"""Where a store lives: a local directory or an object-store prefix, as one small interface.

`Location.parse(text)` turns `--store` (a path, `file://`, `s3://bucket/prefix`, `gs://bucket/prefix`)
into a pyarrow filesystem plus a base path. Everything the store does to its files goes through
the few operations here (list, read, write, move, delete), so the exactly-once rules are the same
everywhere: part files get unique names and are never changed.

- Local: writes go through `rstsweep.core.atomic.atomic_write` (temp file, fsync, rename, fsync of
  the directory), so a reader never sees half a file.
- Object stores have no rename: a part is serialised in memory and written to its final key in
  one upload, which the service makes visible only once it is complete (an S3 PUT or multipart
  completion is atomic), so a reader likewise never sees half an object. Credentials and endpoint
  come from the usual variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
  AWS_ENDPOINT_URL for S3-compatible servers such as MinIO or moto; GOOGLE_APPLICATION_CREDENTIALS).

Pure pyarrow: no torch, no ray.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pyarrow.fs as pafs

from rstsweep.core.atomic import atomic_write, fsync_dir
from rstsweep.errors import RstError

OBJECT_SCHEMES = ("s3", "gs", "gcs")


def first_line(exc: BaseException) -> str:
    """The first line of an exception message (pyarrow and AWS errors run over many)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class Location:
    """A store root: `fs` (a pyarrow FileSystem) and `base` (the root's path inside it)."""

    def __init__(self, text: str, fs: pafs.FileSystem, base: str, *, local: bool) -> None:
        self.text = text  # as the user wrote it: every message names files relative to it
        self.fs = fs
        self.base = base.rstrip("/")
        self.local = local

    def __repr__(self) -> str:
        return f"Location({self.text!r})"

    @classmethod
    def parse(cls, location: str | os.PathLike[str]) -> Location:
        """A Location for `location`; RstError for a scheme pyarrow cannot open."""
        text = os.fspath(location)
        scheme, sep, rest = text.partition("://")
        if not sep or scheme == "file":
            path = rest if sep else text
            absolute = str(Path(path).expanduser().absolute())
            return cls(path, pafs.LocalFileSystem(), absolute, local=True)
        if scheme not in OBJECT_SCHEMES:
            raise RstError(
                f"--store {text}: unsupported scheme {scheme}:// (use a path, s3:// or gs://)"
            )
        if not rest.strip("/"):
            raise RstError(f"--store {text}: name a bucket, e.g. {scheme}://bucket/prefix")
        try:
            fs, base = _object_filesystem(text, scheme, rest)
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise RstError(f"--store {text}: cannot open: {first_line(exc)}") from None
        return cls(text, fs, base, local=False)

    # -- paths

    def path(self, *parts: str) -> str:
        """The filesystem path of `parts` under the root."""
        return "/".join([self.base, *parts])

    def display(self, path: str) -> str:
        """`path` as the user names it: the store location joined with the relative part."""
        relative = path[len(self.base) :].lstrip("/") if path.startswith(self.base) else path
        return f"{self.text.rstrip('/')}/{relative}" if relative else self.text

    # -- queries

    def exists(self) -> bool:
        """Whether the root exists (a directory, or a prefix holding at least one object)."""
        return self._info(self.base).type == pafs.FileType.Directory

    def _info(self, path: str) -> pafs.FileInfo:
        try:
            return self.fs.get_file_info(path)
        except OSError as exc:
            raise RstError(f"{self.text}: cannot reach the store: {first_line(exc)}") from None

    def list_files(self, *parts: str, suffix: str = "") -> list[str]:
        """Visible files directly under `parts` ending in `suffix`, sorted (dot and underscore
        names are temporaries or private). Empty if the directory does not exist."""
        directory = self.path(*parts)
        if self.local:  # pathlib: cheaper than pyarrow's listing for the many small parts
            d = Path(directory)
            names = [p.name for p in d.iterdir() if p.is_file()] if d.is_dir() else []
        else:
            selector = pafs.FileSelector(directory, allow_not_found=True, recursive=False)
            try:
                infos = self.fs.get_file_info(selector)
            except OSError as exc:
                where = self.display(directory)
                raise RstError(f"{where}: cannot list: {first_line(exc)}") from None
            names = [i.base_name for i in infos if i.type == pafs.FileType.File]
        visible = (n for n in names if n.endswith(suffix) and not n.startswith((".", "_")))
        return sorted(f"{directory}/{n}" for n in visible)

    # -- reading and writing

    def read_bytes(self, path: str) -> bytes | None:
        """The content of `path`, or None if it does not exist."""
        try:
            with self.fs.open_input_stream(path) as stream:
                return stream.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            if "not found" in str(exc).lower() or "no such file" in str(exc).lower():
                return None
            raise

    def write(self, path: str, write: Callable[[BinaryIO], object]) -> str:
        """Write `path` whole, visible only once complete (see the module docstring)."""
        if self.local:
            atomic_write(path, write)
            return path
        buffer = io.BytesIO()
        write(buffer)
        data = buffer.getvalue()
        # one write of the whole object: the upload completes, or nothing appears at the key
        stream = self.fs.open_output_stream(path)
        stream.write(data)
        stream.close()
        return path

    def delete(self, path: str) -> None:
        """Remove `path` if present (compaction's merged-away parts, a finished heartbeat)."""
        with contextlib.suppress(FileNotFoundError):
            self.fs.delete_file(path)

    def move(self, source: str, target: str) -> None:
        """Move `source` to `target` (a rename locally; copy then delete on object stores)."""
        if self.local:
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            fsync_dir(Path(target).parent)
            fsync_dir(Path(source).parent)
        else:
            self.fs.copy_file(source, target)
            self.fs.delete_file(source)

    def sync_dir(self, *parts: str) -> None:
        """Make removals in a local directory durable (no-op on object stores)."""
        if self.local:
            fsync_dir(self.path(*parts))


def _object_filesystem(text: str, scheme: str, rest: str) -> tuple[pafs.FileSystem, str]:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if scheme == "s3" and endpoint and "?" not in rest:
        # An S3-compatible server: pyarrow's region lookup would ask AWS itself about the bucket.
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        fs = pafs.S3FileSystem(endpoint_override=endpoint, region=region)
        return fs, rest.strip("/")
    if scheme == "gcs":
        text = "gs://" + rest
    fs, base = pafs.FileSystem.from_uri(text)
    return fs, base

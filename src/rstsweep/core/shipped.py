"""The sweeps file that ships inside the package and the rule that picks the sweeps file a command
reads: `--file PATH` when given (it must exist), else `./sweeps.yaml` when the working directory
has one (a user's edited copy, or the repository checkout's link to the packaged file), else the
packaged copy of the paper's grids (`rstsweep/data/sweeps.yaml`, the one source of truth).
`rstsweep init` writes an editable copy of it. Standard library only.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from rstsweep.core.atomic import atomic_write
from rstsweep.errors import RstError

LOCAL_NAME = "sweeps.yaml"  # the file a command looks for in the working directory


def packaged_sweeps_file() -> Path:
    """The paper's sweeps.yaml inside the installed package (a wheel or a source checkout)."""
    return Path(str(resources.files("rstsweep").joinpath("data", LOCAL_NAME)))


def resolve_sweeps_file(file: str | Path | None) -> Path:
    """The sweeps file a command reads (see the module docstring); RstError for a missing --file."""
    if file is not None:
        path = Path(file)
        if not path.is_file():
            raise RstError(f"{path}: sweeps file not found (pass --file PATH)")
        return path
    local = Path(LOCAL_NAME)
    return local if local.is_file() else packaged_sweeps_file()


def describe_sweeps_file(path: Path) -> str:
    """One line saying which sweeps file a command used (`rstsweep plan` prints it)."""
    if path.resolve() == packaged_sweeps_file().resolve():
        return f"sweeps file: {path} (the paper's grids shipped with rstsweep)"
    return f"sweeps file: {path}"


def write_copy(directory: str | Path, *, force: bool = False) -> Path:
    """Write an editable copy of the packaged sweeps.yaml into `directory` (created); RstError if
    a sweeps.yaml is already there and not `force`. Returns the path written."""
    target = Path(directory) / LOCAL_NAME
    if target.parent.exists() and not target.parent.is_dir():
        raise RstError(f"{target.parent}: not a directory")
    if (target.exists() or target.is_symlink()) and not force:
        raise RstError(f"{target}: already exists (pass --force to overwrite it)")
    data = packaged_sweeps_file().read_bytes()
    # the rename replaces a checkout's link to the packaged file; it never writes through it
    return atomic_write(target, lambda handle: handle.write(data))

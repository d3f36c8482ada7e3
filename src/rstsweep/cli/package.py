"""`rstsweep init`: the commands about the installed package itself (its shipped sweeps file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rstsweep.cli.app import app


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="Where to write sweeps.yaml (default: here).")
    ] = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing sweeps.yaml.")
    ] = False,
) -> None:
    """Write an editable copy of the paper's sweeps.yaml (the packaged one): commands run in that
    directory then read it instead of the packaged file."""
    from rstsweep.core.shipped import write_copy

    path = write_copy(directory, force=force)
    print(f"wrote {path}: edit it, then e.g. `rstsweep plan constant --profile demo` there")

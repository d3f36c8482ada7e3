"""`rstsweep report`: the store's self-contained HTML report (status, plan, figures, tables,
Pareto view, each cell's manifest), written into the store or to `--out`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rstsweep.cli_app import DEFAULT_FILE, DEFAULT_STORE, StoreDir, app


@app.command()
def report(
    store: StoreDir = DEFAULT_STORE,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="The HTML file (default: <store>/report.html)."),
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Sweeps YAML for the plan (default: ./sweeps.yaml)."),
    ] = None,
) -> None:
    """Write one HTML file (no server, no network) to open in any browser, phone included: status
    with pending and failed cells, the plan's estimate, figures, tables, Pareto view, manifests."""
    from rstsweep.errors import RstError
    from rstsweep.sweeper.report import make_report

    if file is not None and not file.exists():
        raise RstError(f"{file}: sweeps file not found")
    print(make_report(store, out, file or DEFAULT_FILE))

"""`rstsweep report`: the store's self-contained HTML report (status, plan, figures, tables,
Pareto view, each cell's manifest), written into the store or to `--out`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rstsweep.cli.app import DEFAULT_STORE, StoreDir, SweepsFile, app
from rstsweep.core.shipped import resolve_sweeps_file


@app.command()
def report(
    store: StoreDir = DEFAULT_STORE,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="The HTML file (default: <store>/report.html)."),
    ] = None,
    file: SweepsFile = None,
) -> None:
    """Write one HTML file (no server, no network) to open in any browser, phone included: status
    with pending and failed cells, the plan's estimate, figures, tables, Pareto view, manifests."""
    from rstsweep.sweeper.report import make_report

    print(make_report(store, out, resolve_sweeps_file(file)))

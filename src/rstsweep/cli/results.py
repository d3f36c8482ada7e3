"""`rstsweep compact`, `verify`, `figures` and `tables`: the commands that read (or maintain) a
result store, local or on object storage."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rstsweep.cli.app import DEFAULT_STORE, CostAxis, StoreDir, app


@app.command()
def compact(store: StoreDir = DEFAULT_STORE) -> None:
    """Merge each store table's small Parquet files into one (safe while nothing else compacts)."""
    from rstsweep.store.store import open_store

    for table, (before, after) in open_store(store, must_exist=True).compact().items():
        print(f"{table}: {before} -> {after} file{'s' if after != 1 else ''}")


@app.command()
def figures(
    store: StoreDir = DEFAULT_STORE,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the figures.")] = Path(
        "figures"
    ),
    fmt: Annotated[str, typer.Option("--format", help="png, pdf or svg.")] = "png",
    cost: CostAxis = "flops",
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", help="Processes drawing figures (0: one per CPU).")
    ] = 0,
) -> None:
    """Draw the paper's Figures 1-5 from the store, and the test error vs compute Pareto view when
    it holds two or more schedule families; print the paths written (notes on stderr)."""
    import matplotlib

    matplotlib.use("Agg")  # files only: never a GUI backend, whatever MPLBACKEND says
    from rstsweep.analysis.figures import make_figures
    from rstsweep.store.store import open_store

    the_store = open_store(store, must_exist=True, read_only=True)
    for path in make_figures(the_store, out, fmt, cost=cost, jobs=jobs):
        print(path)


@app.command()
def tables(
    store: StoreDir = DEFAULT_STORE,
    fmt: Annotated[str, typer.Option("--format", help="md, csv or latex.")] = "md",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write one file per table here.")
    ] = None,
    cost: CostAxis = "flops",
) -> None:
    """Print the paper's tables, ours vs the paper's numbers and, with two or more schedule
    families, the best case at each compute budget; with --out, write files."""
    from rstsweep.analysis.tables import print_or_write_tables
    from rstsweep.store.store import open_store

    print_or_write_tables(open_store(store, must_exist=True, read_only=True), fmt, out, cost)


@app.command()
def verify(
    store: StoreDir = DEFAULT_STORE,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair", help="Move bad files to <store>/.quarantine/ (nothing is deleted)."
        ),
    ] = False,
) -> None:
    """Check every part file and that each done cell has its epochs and draws; exit 1 on problems
    left (with --repair: 0 once they are quarantined; their cells are pending again)."""
    from rstsweep.store.store import open_store
    from rstsweep.store.verify import print_report, verify_store

    the_store = open_store(store, must_exist=True, read_only=not repair)
    report = verify_store(the_store, repair=repair)
    print_report(report)
    if report.problems and not repair:
        sys.exit(1)

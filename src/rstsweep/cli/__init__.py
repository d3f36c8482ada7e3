"""The `rstsweep` command line: a thin typer app over the library (`cli.app`: the app, its error
handling and the shared options), its commands in `cli.train` (schedules, train and its summary,
fields), `cli.sweep` (run, resume, slurm, search, plan, status) and `cli.results` (compact, verify,
figures, tables). Heavy modules (torch, torchvision, ray) are imported inside the commands that
need them, so `rstsweep --help`, `schedules`, `plan`, `status`, `figures`
and `tables` start fast. Every user error becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import sys

import typer

from rstsweep.cli.app import app, fail

# The command modules register their commands in import order, the order `--help` lists them.
# isort: off
from rstsweep.cli import train  # noqa: F401
from rstsweep.cli import sweep  # noqa: F401
from rstsweep.cli import results  # noqa: F401
from rstsweep.cli import package  # noqa: F401
from rstsweep.cli import report  # noqa: F401
# isort: on

__all__ = ["app", "main"]


def main() -> None:
    """Console entry point: run the app; user errors are one clean line and exit 2 (`cli.app`)."""
    try:
        code = app(standalone_mode=False)
    except Exception as exc:  # only click's usage errors and aborts are handled; others re-raise
        _handle_other(exc)
    sys.exit(code if isinstance(code, int) else 0)


def _handle_other(exc: Exception) -> None:
    if isinstance(exc, typer.Abort):
        fail("aborted", 130)
    # Usage errors (unknown option, bad value): typer bundles its own click, whose exceptions are
    # not subclasses of click's, so recognise them by their interface and let them print.
    show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
    if callable(show) and isinstance(exit_code, int):
        show()
        sys.exit(exit_code)
    raise exc

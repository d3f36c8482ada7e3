"""The `rstsweep` command line: a thin typer app over the library.

Heavy modules (torch, torchvision, ray) are imported inside the commands that need them, so
`rstsweep --help`, `schedules`, `plan`, `status`, `figures` and `tables` start fast.
Every user error (`RstError`, a pydantic ValidationError) becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rstsweep.errors import RstError, format_validation_error

app = typer.Typer(
    name="rstsweep",
    help="Run, resume, inspect and analyse Randomized Sharpness-Aware Training (RST) sweeps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SweepsFile = Annotated[Path, typer.Option("--file", "-f", help="The sweeps YAML file.")]
StoreDir = Annotated[Path, typer.Option("--store", "-s", help="The result store directory.")]
Profile = Annotated[str, typer.Option("--profile", "-p", help="Profile: paper, demo, ci, ...")]

DEFAULT_FILE = Path("sweeps.yaml")
DEFAULT_STORE = Path("results")


@app.command()
def schedules(
    steps: Annotated[int, typer.Option("--steps", "-T", min=1, help="T for the discrete Δη.")] = 1000,
    spec: Annotated[
        list[str] | None, typer.Option("--spec", help="Extra schedule specs to list.")
    ] = None,
) -> None:
    """Print the scheduling functions (the paper's Table 2) with closed-form and discrete Δη."""
    from rstsweep.schedules.table import print_schedule_table

    print_schedule_table(steps=steps, extra_specs=spec or [])


def main() -> None:
    """Console entry point: run the app, turning user errors into one clean line and exit 2."""
    try:
        app(standalone_mode=False)
    except RstError as exc:
        _fail(str(exc), exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - only pydantic/click user errors are caught below
        _handle_other(exc)


def _handle_other(exc: Exception) -> None:
    import click
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        _fail(format_validation_error(exc), 2)
    if isinstance(exc, click.exceptions.Abort):
        _fail("aborted", 130)
    if isinstance(exc, click.ClickException):
        exc.show()
        sys.exit(exc.exit_code)
    raise exc


def _fail(message: str, code: int) -> None:
    print(f"rstsweep: error: {message}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()

"""The typer app of the `rstsweep` command line and what its commands share: the error handling
(every user error, an `RstError` or a pydantic ValidationError, becomes one line on stderr and exit
2, wherever the app runs: console script, `python -m rstsweep`, typer's CliRunner) and the common
options (`--file`, `--store`, `--profile`, `--set`). The commands live in `cli_train`, `cli_sweep`
and `cli_store`; `cli.main` is the entry point.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from rstsweep.errors import RstError, format_validation_error


class _App(TyperGroup):
    """The command group; it turns user errors into one line on stderr and exit 2 wherever the app
    runs (the console script, `python -m rstsweep`, typer's CliRunner in the tests)."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except RstError as exc:
            _fail(str(exc), exc.exit_code)
        except Exception as exc:
            if type(exc).__name__ != "ValidationError":  # pydantic's; not imported for --help
                raise
            _fail(format_validation_error(exc), 2)
        return None


app = typer.Typer(
    cls=_App,
    name="rstsweep",
    help="Run, resume, inspect and analyse Randomized Sharpness-Aware Training (RST) sweeps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SweepsFile = Annotated[Path, typer.Option("--file", "-f", help="The sweeps YAML file.")]
StoreDir = Annotated[
    str,
    typer.Option(
        "--store", "-s", help="The result store: a directory, s3://bucket/prefix or gs://..."
    ),
]
Profile = Annotated[str, typer.Option("--profile", "-p", help="Profile: paper, demo, ci, ...")]

DEFAULT_FILE = Path("sweeps.yaml")
DEFAULT_STORE = "results"
DEFAULT_PROFILE = "paper"  # the paper's setting; `demo` and `ci` are the small CPU profiles


def _version(value: bool) -> None:
    if value:
        from rstsweep import __version__

        print(f"rstsweep {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    # An explicit callback keeps `rstsweep` a command group even while it has one command
    # (typer would otherwise run that command as the root and reject `rstsweep schedules`).
    pass


def _opt(help_text: str) -> typer.models.OptionInfo:
    return typer.Option(help=help_text, show_default=False)


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="KEY=VALUE",
        show_default=False,
        help="Any CellConfig field, e.g. --set looksam_k=3 (repeatable; `rstsweep fields`).",
    ),
]


WhereOption = Annotated[
    list[str] | None,
    typer.Option(
        "--where",
        metavar="KEY=VALUE",
        show_default=False,
        help="Only cells with this field value, e.g. model=resnet18, group=piecewise-1 "
        "(repeatable; a key given twice matches either value).",
    ),
]
SeedsOption = Annotated[
    str | None,
    typer.Option("--seeds", metavar="0,1", show_default=False, help="Only these seeds."),
]


def _fail(message: str, code: int) -> None:
    print(f"rstsweep: error: {message}", file=sys.stderr)
    raise typer.Exit(code)

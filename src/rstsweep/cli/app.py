"""The typer app of the `rstsweep` command line and what its commands share: the error handling
(every user error, an `RstError` or a pydantic ValidationError, becomes one line on stderr and exit
2, wherever the app runs: console script, `python -m rstsweep`, typer's CliRunner) and every option
used by more than one command, each declared once here as an `Annotated` alias (`--file`,
`--store`, `--profile`, `--set`, `--cpus-per-trial`, the sweep argument ...). The commands live in
`cli.train`, `cli.sweep` and `cli.results`; `cli.main` is the entry point.
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
            fail(str(exc), exc.exit_code)
        except Exception as exc:
            if type(exc).__name__ != "ValidationError":  # pydantic's; not imported for --help
                raise
            fail(format_validation_error(exc), 2)
        return None


app = typer.Typer(
    cls=_App,
    name="rstsweep",
    help="Run, resume, inspect and analyse Randomized Sharpness-Aware Training (RST) sweeps.",
    no_args_is_help=True,
    add_completion=True,  # rstsweep --install-completion / --show-completion
    pretty_exceptions_enable=False,
)

SweepsFile = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        show_default=False,
        help="The sweeps YAML file (default: ./sweeps.yaml if present, else the packaged one).",
    ),
]
StoreDir = Annotated[
    str,
    typer.Option(
        "--store", "-s", help="The result store: a directory, s3://bucket/prefix or gs://..."
    ),
]
Profile = Annotated[str, typer.Option("--profile", "-p", help="Profile: paper, demo, ci, ...")]
ProfileOrNone = Annotated[
    str | None, typer.Option("--profile", "-p", help="Profile (default: the recorded one).")
]
SweepName = Annotated[str, typer.Argument(help="The sweep (a name in the sweeps file).")]
CpusPerTrial = Annotated[float, typer.Option(help="CPUs per trial.")]
GpusPerTrial = Annotated[
    float | None,
    typer.Option(
        help="GPUs per trial (default: 1 where the cluster has GPUs, else 0; 0.25: 4 per "
        "GPU; 2: 2 data-parallel workers; 0: CPU trials).",
        show_default=False,
    ),
]
MaxConcurrent = Annotated[int | None, typer.Option(help="At most this many trials.")]
MaxFailures = Annotated[int, typer.Option(help="Retries of a crashed trial.")]
NumCpus = Annotated[float | None, typer.Option(help="Local Ray only: CPUs to use.")]
DataDir = Annotated[
    Path | None,
    typer.Option(help="Dataset directory for every cell (overrides the profile's data_dir)."),
]
Trackers = Annotated[
    list[str] | None,
    typer.Option(help="tensorboard (default), mlflow, wandb or none; repeatable."),
]
Address = Annotated[
    str | None, typer.Option(help="An existing Ray cluster (default: a local Ray).")
]
NumGpus = Annotated[
    int | None, typer.Option(help="Local Ray only: GPUs to declare (logical ones allowed).")
]
Scratch = Annotated[
    Path | None,
    typer.Option(help="Ray Tune's scratch dir; shared by all nodes of a multi-node cluster."),
]
Force = Annotated[
    bool, typer.Option("--force", help="Run even while another run's heartbeat is live.")
]
CostAxis = Annotated[
    str,
    typer.Option(
        "--cost",
        help="The cost axis of the Pareto view and best-at-budget: flops (the FLOP model's "
        "extra passes, Δη) or time (extra time the cells' branch timers measured).",
    ),
]
NoProbe = Annotated[
    bool, typer.Option("--no-probe", help="No step-cost probe (do not time unmeasured settings).")
]

DEFAULT_FILE: Path | None = None  # core.shipped.resolve_sweeps_file picks the file
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
    from rstsweep.plugins import load_plugins

    load_plugins()  # a user's schedule families etc. (entry points `rstsweep.plugins`)


def opt(help_text: str) -> typer.models.OptionInfo:
    """An option without a shown default (its default is the config's, not the flag's)."""
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


def fail(message: str, code: int) -> None:
    """Print `rstsweep: error: MESSAGE` on stderr and exit with `code`."""
    print(f"rstsweep: error: {message}", file=sys.stderr)
    raise typer.Exit(code)

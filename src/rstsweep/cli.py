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
DEFAULT_PROFILE = "paper"  # the paper's setting; `demo` and `ci` are the small CPU profiles


@app.command()
def schedules(
    steps: Annotated[
        int, typer.Option("--steps", "-T", min=1, help="T for the discrete Δη.")
    ] = 1000,
    spec: Annotated[
        list[str] | None, typer.Option("--spec", help="Extra schedule specs to list.")
    ] = None,
) -> None:
    """Print the scheduling functions (the paper's Table 2) with closed-form and discrete Δη."""
    from rstsweep.schedules.table import print_schedule_table

    print_schedule_table(steps=steps, extra_specs=spec or [])


@app.callback()
def _root() -> None:
    # An explicit callback keeps `rstsweep` a command group even while it has one command
    # (typer would otherwise run that command as the root and reject `rstsweep schedules`).
    pass


def _opt(help_text: str) -> typer.models.OptionInfo:
    return typer.Option(help=help_text, show_default=False)


@app.command("train")
def train_cmd(
    algorithm: Annotated[str | None, _opt("sgd sam asam gsam gnr looksam esam ssam.")] = None,
    schedule: Annotated[str | None, _opt("p(t), e.g. 'constant(0.5)', 'cos1'.")] = None,
    model: Annotated[str | None, _opt("fastcnn, resnet18, wrn-D-K, vgg16-bn, vit-s16, ...")] = None,
    dataset: Annotated[str | None, _opt("fashion-mnist, cifar10, cifar100, imagenet.")] = None,
    epochs: Annotated[int | None, _opt("Training epochs.")] = None,
    seed: Annotated[int | None, _opt("Seed of the model init, data order and coins.")] = None,
    train_subset: Annotated[int | None, _opt("Use a seeded subset of the training set.")] = None,
    test_subset: Annotated[int | None, _opt("Use a seeded subset of the test set.")] = None,
    batch_size: Annotated[int | None, _opt("Batch size.")] = None,
    lr: Annotated[float | None, _opt("Peak learning rate.")] = None,
    rho: Annotated[float | None, _opt("SAM radius ρ.")] = None,
    alpha: Annotated[float | None, _opt("GNR/G-RST mix α.")] = None,
    optimizer: Annotated[str | None, _opt("Base optimizer: sgd, adam, adamw.")] = None,
    augment: Annotated[str | None, _opt("none, basic, cutout.")] = None,
    label_noise: Annotated[float | None, _opt("Symmetric label noise (train only).")] = None,
    label_smoothing: Annotated[float | None, _opt("Label smoothing of the loss.")] = None,
    weight_decay: Annotated[float | None, _opt("Weight decay (in the base update).")] = None,
    lr_schedule: Annotated[str | None, _opt("cosine, step, constant.")] = None,
    grad_clip: Annotated[float | None, _opt("Global gradient-norm clip.")] = None,
    eval_every: Annotated[int | None, _opt("Evaluate every k-th epoch (and the last).")] = None,
    width: Annotated[int | None, _opt("Model width override.")] = None,
    data_dir: Annotated[str | None, _opt("Dataset directory.")] = None,
    device: Annotated[str | None, _opt("auto, cpu, cuda, cuda:1 ...")] = None,
    threads: Annotated[int | None, _opt("torch CPU threads.")] = None,
    out: Annotated[Path | None, _opt("Directory for checkpoint.pt and final.pt.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print a JSON summary only.")] = False,
) -> None:
    """Train one cell (one RST run) and print its summary."""
    from rstsweep.trainers.summary import run_cli

    options = dict(locals())
    for key in ("out", "resume", "json_", "run_cli"):
        options.pop(key)
    code = run_cli(options, out=out, resume=resume, as_json=json_)
    if code:
        sys.exit(code)


@app.command()
def run(
    sweep: Annotated[str, typer.Argument(help="The sweep to run (a name in the sweeps file).")],
    file: SweepsFile = DEFAULT_FILE,
    profile: Profile = DEFAULT_PROFILE,
    store: StoreDir = DEFAULT_STORE,
    address: Annotated[
        str | None, typer.Option(help="An existing Ray cluster (default: a local Ray).")
    ] = None,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs per trial.")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(help="GPUs per trial (0.25: 4 per GPU).")] = 0.0,
    max_concurrent: Annotated[int | None, typer.Option(help="At most this many trials.")] = None,
    max_failures: Annotated[int, typer.Option(help="Retries of a crashed trial.")] = 2,
    num_cpus: Annotated[float | None, typer.Option(help="Local Ray only: CPUs to use.")] = None,
    num_gpus: Annotated[
        int | None, typer.Option(help="Local Ray only: GPUs to declare (logical ones allowed).")
    ] = None,
    scratch: Annotated[
        Path | None,
        typer.Option(help="Ray Tune's scratch dir; shared by all nodes of a multi-node cluster."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Dataset directory for every cell (overrides the profile's data_dir)."),
    ] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No live display.")] = False,
) -> None:
    """Run the sweep's cells not yet in the store, through Ray Tune (re-running resumes)."""
    from rstsweep.sweeper.driver import run_command
    from rstsweep.sweeper.options import RunOptions

    options = RunOptions(
        sweep=sweep,
        file=file,
        profile=profile,
        store=store,
        address=address,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        max_concurrent=max_concurrent,
        max_failures=max_failures,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        scratch=scratch,
        data_dir=data_dir,
        progress=False if no_progress else None,
    )
    code = run_command(options)
    if code:
        sys.exit(code)


app.command("resume", help="Alias of `run`: run the cells not yet in the store.")(run)


@app.command()
def search(
    sweep: Annotated[str, typer.Argument(help="The sweep whose schedule/policy to search.")],
    budget: Annotated[float, typer.Option(help="Most realized extra compute Δη, in [0, 1].")],
    trials: Annotated[int, typer.Option(help="Suggestions in all (re-running continues).")],
    family: Annotated[
        str | None, _opt("The family/policy to search (sweeps with several).")
    ] = None,
    file: SweepsFile = DEFAULT_FILE,
    profile: Profile = DEFAULT_PROFILE,
    store: StoreDir = DEFAULT_STORE,
    rho: Annotated[bool, typer.Option("--rho", help="Also search ρ (log, ρ/4 .. 4ρ).")] = False,
    alpha: Annotated[bool, typer.Option("--alpha", help="Also search α in [0, 2].")] = False,
    asha: Annotated[bool, typer.Option("--asha", help="ASHA: stop bad suggestions early.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the TPE sampler.")] = 0,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs per trial.")] = 1.0,
    max_concurrent: Annotated[int | None, typer.Option(help="At most this many trials.")] = None,
    num_cpus: Annotated[float | None, typer.Option(help="Local Ray: CPUs to use.")] = None,
) -> None:
    """Search the lowest test error at realized extra compute <= BUDGET (Ray Tune + Optuna TPE)."""
    from rstsweep.sweeper.search import SearchOptions, search_command

    options = SearchOptions(
        sweep=sweep,
        budget=budget,
        trials=trials,
        family=family,
        file=file,
        profile=profile,
        store=store,
        rho=rho,
        alpha=alpha,
        asha=asha,
        seed=seed,
        cpus_per_trial=cpus_per_trial,
        max_concurrent=max_concurrent,
        num_cpus=num_cpus,
    )
    sys.exit(search_command(options))


@app.command()
def plan(
    sweep: Annotated[str, typer.Argument(help="Sweep name from the sweeps file.")],
    file: SweepsFile = DEFAULT_FILE,
    profile: Profile = DEFAULT_PROFILE,
    store: StoreDir = DEFAULT_STORE,
) -> None:
    """Show a sweep's cells by group, expected forward-backward passes and estimated time."""
    from rstsweep.sweeper.plan import plan_sweep, print_plan

    print_plan(plan_sweep(file, sweep, profile, store), store)


@app.command()
def status(
    sweep: Annotated[
        str | None, typer.Argument(help="One sweep (default: all in the store).")
    ] = None,
    store: StoreDir = DEFAULT_STORE,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Sweeps YAML (default: ./sweeps.yaml).")
    ] = None,
    profile: Annotated[
        str | None, typer.Option("--profile", "-p", help="Profile (default: the recorded one).")
    ] = None,
) -> None:
    """Done / running / failed / pending cells per sweep and group, realized compute, failures."""
    from rstsweep.sweeper.status import collect_status, print_status

    if file is not None and not file.exists():
        raise RstError(f"{file}: sweeps file not found")
    found = file or (DEFAULT_FILE if DEFAULT_FILE.exists() else None)
    print_status(collect_status(store, sweep, found, profile), detail=sweep is not None)


@app.command()
def compact(store: StoreDir = DEFAULT_STORE) -> None:
    """Merge each store table's small Parquet files into one (safe while nothing else compacts)."""
    from rstsweep.store.store import Store

    if not store.is_dir():
        raise RstError(f"{store}: no result store here (pass --store DIR)")
    for table, (before, after) in Store(store).compact().items():
        print(f"{table}: {before} -> {after} file{'s' if after != 1 else ''}")


@app.command()
def figures(
    store: StoreDir = DEFAULT_STORE,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the figures.")] = Path(
        "figures"
    ),
    fmt: Annotated[str, typer.Option("--format", help="png, pdf or svg.")] = "png",
) -> None:
    """Draw the paper's Figures 1-5 from the store; print the paths written (notes on stderr)."""
    from rstsweep.analysis.figures import make_figures
    from rstsweep.analysis.results import require_store

    for path in make_figures(require_store(store), out, fmt):
        print(path)


@app.command()
def tables(
    store: StoreDir = DEFAULT_STORE,
    fmt: Annotated[str, typer.Option("--format", help="md, csv or latex.")] = "md",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write one file per table here.")
    ] = None,
) -> None:
    """Print the paper's tables (and ours vs the paper's numbers); with --out, write files."""
    from rstsweep.analysis.results import require_store
    from rstsweep.analysis.tables import print_or_write_tables

    print_or_write_tables(require_store(store), fmt, out)


def main() -> None:
    """Console entry point: run the app, turning user errors into one clean line and exit 2."""
    try:
        app(standalone_mode=False)
    except RstError as exc:
        _fail(str(exc), exc.exit_code)
    except Exception as exc:  # only pydantic/click user errors are handled; others re-raise
        _handle_other(exc)


def _handle_other(exc: Exception) -> None:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        _fail(format_validation_error(exc), 2)
    if isinstance(exc, typer.Abort):
        _fail("aborted", 130)
    # Usage errors (unknown option, bad value): typer bundles its own click, whose exceptions are
    # not subclasses of click's, so recognise them by their interface and let them print.
    show, exit_code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
    if callable(show) and isinstance(exit_code, int):
        show()
        sys.exit(exit_code)
    raise exc


def _fail(message: str, code: int) -> None:
    print(f"rstsweep: error: {message}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()

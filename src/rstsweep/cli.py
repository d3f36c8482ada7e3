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
from typer.core import TyperGroup

from rstsweep.core.algorithms import algorithm_names
from rstsweep.core.catalog import DATASETS, MODEL_NAMES
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


@app.command("train")
def train_cmd(
    algorithm: Annotated[
        str | None, _opt(f"The SA branch: {', '.join(algorithm_names())}.")
    ] = None,
    schedule: Annotated[str | None, _opt("p(t), e.g. 'constant(0.5)', 'cos1'.")] = None,
    model: Annotated[str | None, _opt(f"{', '.join(MODEL_NAMES)}.")] = None,
    dataset: Annotated[str | None, _opt(f"{', '.join(DATASETS)}.")] = None,
    epochs: Annotated[int | None, _opt("Training epochs.")] = None,
    seed: Annotated[int | None, _opt("Seed of the model init, data order and coins.")] = None,
    data_dir: Annotated[str | None, _opt("Dataset directory.")] = None,
    device: Annotated[str | None, _opt("auto, cpu, cuda, cuda:1 ...")] = None,
    world_size: Annotated[int | None, _opt("Data-parallel processes (gloo on CPU).")] = None,
    precision: Annotated[str | None, _opt("auto (bf16 on CUDA), fp32, bf16, fp16.")] = None,
    compile_: Annotated[
        bool, typer.Option("--compile", help="torch.compile the base and SA passes.")
    ] = False,
    deterministic: Annotated[
        bool, typer.Option("--deterministic", help="Deterministic algorithms (bit-identical GPU).")
    ] = False,
    set_: SetOption = None,
    out: Annotated[Path | None, _opt("Directory for checkpoint.pt and final.pt.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print a JSON summary only.")] = False,
) -> None:
    """Train one cell (one RST run) and print its summary.

    The flags set the common fields; --set KEY=VALUE sets any field of
    the cell config; `rstsweep fields` lists them all with type, range,
    default and description. Unset fields keep their defaults.
    """
    from rstsweep.core.fields import make_config, parse_assignments

    flags = {"algorithm": algorithm, "schedule": schedule, "model": model, "dataset": dataset,
             "epochs": epochs, "seed": seed, "data_dir": data_dir, "device": device,
             "world_size": world_size, "precision": precision,
             # switches: only an explicit flag overrides the config default
             "compile": compile_ or None, "deterministic": deterministic or None}  # fmt: skip
    given = {k: v for k, v in flags.items() if v is not None}
    sets = parse_assignments(set_ or [])
    clash = sorted(given.keys() & sets.keys())
    if clash:
        raise RstError(f"--set {clash[0]}: also given as --{clash[0].replace('_', '-')}")
    where = {k: f"--{k.replace('_', '-')}" for k in given} | {k: f"--set {k}" for k in sets}
    config = make_config(given | sets, where)  # validated before torch is imported
    if resume and out is None:
        raise RstError("--resume: needs --out DIR (the directory holding checkpoint.pt)")

    from rstsweep.trainers.summary import run_cli

    code = run_cli(config, out=out, resume=resume, as_json=json_)
    if code:
        sys.exit(code)


@app.command("fields")
def fields_cmd() -> None:
    """List every cell-config field (type, range, default, description) for `--set KEY=VALUE`."""
    from rstsweep.core.fields import fields_text

    print(fields_text())


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
    gpus_per_trial: Annotated[
        float, typer.Option(help="GPUs per trial (0.25: 4 per GPU; 2: 2 data-parallel workers).")
    ] = 0.0,
    world_size: Annotated[
        int | None,
        typer.Option(min=1, help="Data-parallel workers per trial (CPU: gloo processes)."),
    ] = None,
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
    log_every: Annotated[
        float,
        typer.Option(
            min=0.1,
            envvar="RSTSWEEP_LOG_EVERY",
            help="Without the live display (stderr not a terminal): a summary line every N s.",
        ),
    ] = 30.0,
    tracker: Annotated[
        list[str] | None,
        typer.Option(help="tensorboard (default), mlflow, wandb or none; repeatable."),
    ] = None,
    no_probe: Annotated[
        bool, typer.Option("--no-probe", help="No step-cost probe for the estimate.")
    ] = False,
    set_: SetOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Run even while another run's heartbeat is live.")
    ] = False,
) -> None:
    """Run the sweep's cells not yet in the store, through Ray Tune (re-running resumes).

    --set KEY=VALUE overrides a cell-config field of every cell, over
    the profile's overrides (so the cells and their cell_ids change).
    """
    from rstsweep.core.fields import parse_assignments

    overrides = parse_assignments(set_ or [])  # unknown keys: before the driver is even imported
    from rstsweep.sweeper.driver import run_command
    from rstsweep.sweeper.options import RunOptions
    from rstsweep.sweeper.trackers import parse_trackers

    options = RunOptions(
        sweep=sweep,
        file=file,
        profile=profile,
        store=store,
        overrides=overrides,
        address=address,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        world_size=world_size,
        max_concurrent=max_concurrent,
        max_failures=max_failures,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        scratch=scratch,
        data_dir=data_dir,
        progress=False if no_progress else None,
        log_every_s=log_every,
        trackers=parse_trackers(tracker),
        probe=not no_probe,
        force=force,
    )
    code = run_command(options)
    if code:
        sys.exit(code)


app.command("resume", help="Alias of `run`: run the cells not yet in the store.")(run)


@app.command()
def slurm(
    sweep: Annotated[str, typer.Argument(help="The sweep to run (a name in the sweeps file).")],
    nodes: Annotated[int, typer.Option(help="Nodes to allocate (one Ray node each).")] = 1,
    gpus_per_node: Annotated[int, typer.Option(help="GPUs per node.")] = 0,
    cpus_per_node: Annotated[int | None, typer.Option(help="CPUs per node.")] = None,
    partition: Annotated[str | None, typer.Option(help="SLURM partition.")] = None,
    time: Annotated[str | None, typer.Option(help="SLURM time limit, e.g. 24:00:00.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Script path (default rstsweep-SWEEP.sbatch).")
    ] = None,
    submit: Annotated[bool, typer.Option("--submit", help="Submit it with sbatch.")] = False,
    file: SweepsFile = DEFAULT_FILE,
    profile: Profile = DEFAULT_PROFILE,
    store: StoreDir = DEFAULT_STORE,
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs per trial.")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(help="GPUs per trial (0.25: 4 per GPU).")] = 0.0,
    max_concurrent: Annotated[int | None, typer.Option(help="At most this many trials.")] = None,
    max_failures: Annotated[int, typer.Option(help="Retries of a crashed trial.")] = 2,
    data_dir: Annotated[Path | None, typer.Option(help="Dataset directory on the nodes.")] = None,
    tracker: Annotated[
        list[str] | None, typer.Option(help="tensorboard (default), mlflow, wandb or none.")
    ] = None,
    set_: SetOption = None,
) -> None:
    """Write an sbatch script running the sweep on a SLURM allocation through Ray (requeue-safe)."""
    from rstsweep.core.fields import parse_assignments
    from rstsweep.sweeper.options import RunOptions
    from rstsweep.sweeper.slurm import SlurmJob, slurm_command
    from rstsweep.sweeper.trackers import parse_trackers

    options = RunOptions(
        sweep=sweep,
        file=file,
        profile=profile,
        store=store,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        max_concurrent=max_concurrent,
        max_failures=max_failures,
        data_dir=data_dir,
        trackers=parse_trackers(tracker),
        overrides=parse_assignments(set_ or []),
    )
    job = SlurmJob(nodes, gpus_per_node, cpus_per_node, partition, time)
    slurm_command(options, job, out, submit)


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
    cpus_per_trial: Annotated[float, typer.Option(help="CPUs per trial.")] = 1.0,
    gpus_per_trial: Annotated[float, typer.Option(help="GPUs per trial.")] = 0.0,
    slots: Annotated[
        int | None,
        typer.Option(min=1, help="Concurrent trials (default: what this machine holds)."),
    ] = None,
    no_probe: Annotated[
        bool, typer.Option("--no-probe", help="Do not time unmeasured settings (a few steps each).")
    ] = False,
    set_: SetOption = None,
) -> None:
    """Show a sweep's cells by group, expected forward-backward passes and estimated time."""
    from rstsweep.core.fields import parse_assignments
    from rstsweep.sweeper.plan import plan_sweep, print_plan
    from rstsweep.sweeper.probe import Resources

    overrides = parse_assignments(set_ or [])
    resources = Resources(cpus_per_trial, gpus_per_trial, slots)
    plan_ = plan_sweep(
        file, sweep, profile, store, overrides, probe=not no_probe, resources=resources
    )
    print_plan(plan_, store)


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
    world_size: Annotated[
        int | None, typer.Option(min=1, help="As given to run (--world-size / --gpus-per-trial N).")
    ] = None,
) -> None:
    """Done / running / failed / pending cells per sweep and group, realized compute, failures."""
    from rstsweep.sweeper.status import collect_status, print_status

    if file is not None and not file.exists():
        raise RstError(f"{file}: sweeps file not found")
    found = file or (DEFAULT_FILE if DEFAULT_FILE.exists() else None)
    status_of = collect_status(store, sweep, found, profile, world_size)
    print_status(status_of, detail=sweep is not None)


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
) -> None:
    """Draw the paper's Figures 1-5 from the store, and the test error vs compute Pareto view when
    it holds two or more schedule families; print the paths written (notes on stderr)."""
    from rstsweep.analysis.figures import make_figures
    from rstsweep.store.store import open_store

    for path in make_figures(open_store(store, must_exist=True, read_only=True), out, fmt):
        print(path)


@app.command()
def tables(
    store: StoreDir = DEFAULT_STORE,
    fmt: Annotated[str, typer.Option("--format", help="md, csv or latex.")] = "md",
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write one file per table here.")
    ] = None,
) -> None:
    """Print the paper's tables, ours vs the paper's numbers and, with two or more schedule
    families, the best case at each compute budget; with --out, write files."""
    from rstsweep.analysis.tables import print_or_write_tables
    from rstsweep.store.store import open_store

    print_or_write_tables(open_store(store, must_exist=True, read_only=True), fmt, out)


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


def main() -> None:
    """Console entry point: run the app; user errors are one clean line and exit 2 (see `_App`)."""
    try:
        code = app(standalone_mode=False)
    except Exception as exc:  # only click's usage errors and aborts are handled; others re-raise
        _handle_other(exc)
    sys.exit(code if isinstance(code, int) else 0)


def _handle_other(exc: Exception) -> None:
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
    raise typer.Exit(code)


if __name__ == "__main__":
    main()

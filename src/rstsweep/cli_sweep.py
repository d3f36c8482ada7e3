"""`rstsweep run`/`resume`, `slurm`, `search`, `plan` and `status`: the sweep commands, each a
thin layer over `rstsweep.sweeper` (ray is imported only by the commands that start it)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rstsweep.cli_app import (
    DEFAULT_FILE,
    DEFAULT_PROFILE,
    DEFAULT_STORE,
    Profile,
    SeedsOption,
    SetOption,
    StoreDir,
    SweepsFile,
    WhereOption,
    _opt,
    app,
)
from rstsweep.errors import RstError


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
    where: WhereOption = None,
    seeds: SeedsOption = None,
) -> None:
    """Run the sweep's cells not yet in the store, through Ray Tune (re-running resumes).

    --set KEY=VALUE overrides a cell-config field of every cell, over
    the profile's overrides (so the cells and their cell_ids change).
    """
    from rstsweep.core.fields import parse_assignments

    overrides = parse_assignments(set_ or [])  # unknown keys: before the driver is even imported
    from rstsweep.sweeper.slices import parse_slice

    chosen = parse_slice(where, seeds)
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
        slice=chosen,
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
    where: WhereOption = None,
    seeds: SeedsOption = None,
) -> None:
    """Show a sweep's cells by group, expected forward-backward passes and estimated time."""
    from rstsweep.core.fields import parse_assignments
    from rstsweep.sweeper.plan import plan_sweep, print_plan
    from rstsweep.sweeper.probe import Resources
    from rstsweep.sweeper.slices import parse_slice

    overrides = parse_assignments(set_ or [])
    chosen = parse_slice(where, seeds)
    resources = Resources(cpus_per_trial, gpus_per_trial, slots)
    plan_ = plan_sweep(
        file,
        sweep,
        profile,
        store,
        overrides,
        probe=not no_probe,
        resources=resources,
        chosen=chosen,
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
    where: WhereOption = None,
    seeds: SeedsOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    pending: Annotated[
        bool,
        typer.Option(
            "--pending", help="List the cells not done: id, group, label, settings, last error."
        ),
    ] = False,
) -> None:
    """Done / running / failed / pending cells per sweep and group, realized compute, failures."""
    from rstsweep.sweeper.records import print_json, print_pending, status_record
    from rstsweep.sweeper.slices import parse_slice
    from rstsweep.sweeper.status import collect_status, print_status

    chosen = parse_slice(where, seeds)
    if file is not None and not file.exists():
        raise RstError(f"{file}: sweeps file not found")
    found = file or (DEFAULT_FILE if DEFAULT_FILE.exists() else None)
    status_of = collect_status(store, sweep, found, profile, world_size, chosen=chosen)
    if not status_of.live:  # a killed driver's MLflow runs: RUNNING no more
        from rstsweep.sweeper.tracker_runs import end_stale_runs

        end_stale_runs(status_of.store)
    if as_json:
        print_json(status_record(status_of))
    elif pending:
        print_pending(status_of)
    else:
        print_status(status_of, detail=sweep is not None)

"""`rstsweep run`/`resume`, `slurm`, `search`, `plan` and `status`: the sweep commands, each a
thin layer over `rstsweep.sweeper` (ray is imported only by the commands that start it). Their
shared options are the aliases of `cli.app`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rstsweep.cli.app import (
    DEFAULT_FILE,
    DEFAULT_PROFILE,
    DEFAULT_STORE,
    Address,
    CpusPerTrial,
    DataDir,
    Force,
    GpusPerTrial,
    MaxConcurrent,
    MaxFailures,
    NoProbe,
    NumCpus,
    NumGpus,
    Profile,
    ProfileOrNone,
    Scratch,
    SeedsOption,
    SetOption,
    StoreDir,
    SweepName,
    SweepsFile,
    Trackers,
    WhereOption,
    app,
    opt,
)
from rstsweep.core.extras import missing_modules, require_extra
from rstsweep.core.shipped import describe_sweeps_file, resolve_sweeps_file
from rstsweep.errors import RstError


@app.command()
def run(
    sweep: SweepName,
    file: SweepsFile = DEFAULT_FILE,
    profile: Profile = DEFAULT_PROFILE,
    store: StoreDir = DEFAULT_STORE,
    address: Address = None,
    cpus_per_trial: CpusPerTrial = 1.0,
    gpus_per_trial: GpusPerTrial = None,
    world_size: Annotated[
        int | None,
        typer.Option(min=1, help="Data-parallel workers per trial (CPU: gloo processes)."),
    ] = None,
    max_concurrent: MaxConcurrent = None,
    max_failures: MaxFailures = 2,
    num_cpus: NumCpus = None,
    num_gpus: NumGpus = None,
    scratch: Scratch = None,
    data_dir: DataDir = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="No live display.")] = False,
    log_every: Annotated[
        float,
        typer.Option(
            min=0.1,
            envvar="RSTSWEEP_LOG_EVERY",
            help="Without the live display (stderr not a terminal): a summary line every N s.",
        ),
    ] = 30.0,
    tracker: Trackers = None,
    no_probe: NoProbe = False,
    set_: SetOption = None,
    force: Force = False,
    where: WhereOption = None,
    seeds: SeedsOption = None,
) -> None:
    """Run the sweep's cells not yet in the store, through Ray Tune (re-running resumes).

    --set KEY=VALUE overrides a cell-config field of every cell, over
    the profile's overrides (so the cells and their cell_ids change).
    """
    from rstsweep.core.fields import parse_assignments

    overrides = parse_assignments(set_ or [])  # unknown keys: before the driver is even imported
    file = resolve_sweeps_file(file)
    require_extra("run", "rstsweep run")
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
    sweep: SweepName,
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
    cpus_per_trial: CpusPerTrial = 1.0,
    gpus_per_trial: GpusPerTrial = None,
    max_concurrent: MaxConcurrent = None,
    max_failures: MaxFailures = 2,
    data_dir: DataDir = None,
    tracker: Trackers = None,
    set_: SetOption = None,
) -> None:
    """Write an sbatch script running the sweep on a SLURM allocation through Ray (requeue-safe)."""
    file = resolve_sweeps_file(file)
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
    sweep: SweepName,
    budget: Annotated[float, typer.Option(help="Most realized extra compute Δη, in [0, 1].")],
    trials: Annotated[int, typer.Option(help="Suggestions in all (re-running continues).")],
    family: Annotated[str | None, opt("The family/policy to search (sweeps with several).")] = None,
    file: SweepsFile = DEFAULT_FILE,
    profile: Profile = DEFAULT_PROFILE,
    store: StoreDir = DEFAULT_STORE,
    rho: Annotated[bool, typer.Option("--rho", help="Also search ρ (log, ρ/4 .. 4ρ).")] = False,
    alpha: Annotated[bool, typer.Option("--alpha", help="Also search α in [0, 2].")] = False,
    asha: Annotated[bool, typer.Option("--asha", help="ASHA: stop bad suggestions early.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the TPE sampler.")] = 0,
    address: Address = None,
    cpus_per_trial: CpusPerTrial = 1.0,
    gpus_per_trial: GpusPerTrial = None,
    max_concurrent: MaxConcurrent = None,
    max_failures: MaxFailures = 2,
    num_cpus: NumCpus = None,
    num_gpus: NumGpus = None,
    scratch: Scratch = None,
    data_dir: DataDir = None,
    tracker: Trackers = None,
    set_: SetOption = None,
    force: Force = False,
    cost: Annotated[
        str,
        typer.Option(
            "--cost",
            help="What --budget is in: flops (the FLOP model's extra passes, Δη) or time "
            "(extra time the cells' branch timers measured, base step = 1).",
        ),
    ] = "flops",
) -> None:
    """Search the lowest test error at realized extra compute <= BUDGET (Ray Tune + Optuna TPE)."""
    file = resolve_sweeps_file(file)
    require_extra("run", "rstsweep search")
    from rstsweep.core.fields import parse_assignments
    from rstsweep.sweeper.options import RunOptions
    from rstsweep.sweeper.search.command import SearchOptions, search_command
    from rstsweep.sweeper.trackers import parse_trackers

    run_options = RunOptions(
        sweep=sweep,
        file=file,
        profile=profile,
        store=store,
        overrides=parse_assignments(set_ or []),
        address=address,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        max_concurrent=max_concurrent,
        max_failures=max_failures,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        scratch=scratch,
        data_dir=data_dir,
        trackers=parse_trackers(tracker),
        force=force,
    )
    options = SearchOptions(
        budget=budget,
        trials=trials,
        run=run_options,
        family=family,
        rho=rho,
        alpha=alpha,
        asha=asha,
        cost=cost,
        seed=seed,
    )
    sys.exit(search_command(options))


@app.command()
def plan(
    sweep: SweepName,
    file: SweepsFile = DEFAULT_FILE,
    profile: Profile = DEFAULT_PROFILE,
    store: StoreDir = DEFAULT_STORE,
    cpus_per_trial: CpusPerTrial = 1.0,
    gpus_per_trial: GpusPerTrial = None,
    slots: Annotated[
        int | None,
        typer.Option(min=1, help="Concurrent trials (default: what this machine holds)."),
    ] = None,
    no_probe: NoProbe = False,
    set_: SetOption = None,
    cost: Annotated[
        str,
        typer.Option(
            "--cost",
            help="How an SA step's extra time is estimated: flops (the FLOP model's passes × "
            "measured step times) or time (step atoms the probe measured on this device).",
        ),
    ] = "flops",
    where: WhereOption = None,
    seeds: SeedsOption = None,
) -> None:
    """Show a sweep's cells by group, expected forward-backward passes and estimated time."""
    from rstsweep.core.fields import parse_assignments
    from rstsweep.core.passes import COSTS
    from rstsweep.sweeper.options import RunOptions
    from rstsweep.sweeper.plan import plan_sweep, print_plan
    from rstsweep.sweeper.resources import detect_gpus
    from rstsweep.sweeper.slices import parse_slice

    overrides = parse_assignments(set_ or [])
    chosen = parse_slice(where, seeds)
    if cost not in COSTS:
        raise RstError(f"--cost: {cost!r} is not one of {', '.join(COSTS)}")
    file = resolve_sweeps_file(file)
    no_torch = not no_probe and "torch" in missing_modules("run")  # probes time steps with torch
    no_probe = no_probe or no_torch
    asked = RunOptions(
        cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, max_concurrent=slots
    )
    placement = asked.with_gpus(detect_gpus(), warn=False).placement  # as `run` here would
    plan_ = plan_sweep(
        file,
        sweep,
        profile,
        store,
        overrides,
        probe=not no_probe,
        placement=placement,
        cost=cost,
        chosen=chosen,
    )
    # only once the plan exists: bad input is one line on stderr and nothing on stdout
    if no_torch:
        note = "note: no step-cost probes without torch: pip install 'rstsweep[run]'"
        print(note, file=sys.stderr)
    print(describe_sweeps_file(file))
    print_plan(plan_, store)


@app.command()
def status(
    sweep: Annotated[
        str | None, typer.Argument(help="One sweep (default: all in the store).")
    ] = None,
    store: StoreDir = DEFAULT_STORE,
    file: SweepsFile = None,
    profile: ProfileOrNone = None,
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
    found = resolve_sweeps_file(file)
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

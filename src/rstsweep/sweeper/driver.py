"""`rstsweep run`: run the cells of a sweep that the store does not hold yet, through Ray Tune.

The store is the truth and re-running is the resume: `run_sweep` subtracts `store.done_ids()`,
records sweep membership, and hands the remaining cells to one Ray Tune experiment (a grid search
over cell_ids; the configs travel through Ray's object store). Each trial runs the trainer with
epoch checkpoints (`sweeper.trial`), so `FailureConfig(max_failures)` retries a crashed trial
from its last epoch; the driver-side callback (`sweeper.tune_callback`) writes each finished cell
to the store at once. Tune's experiment directory is scratch (`<store>/.scratch/runs/<run_id>/`,
removed after a clean run; a killed run leaves it behind harmlessly: the next run starts a new
experiment and skips the cells the store has).

No ray import at module level: `ray` is imported once the inputs are validated.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rstsweep.core.format import format_duration
from rstsweep.core.names import CRASH_ENV
from rstsweep.sweeper.guard import claim
from rstsweep.sweeper.loglines import LogLines
from rstsweep.sweeper.multi import check_cluster, trial_resources, with_world_size, world_size_for
from rstsweep.sweeper.options import RunOptions
from rstsweep.sweeper.progress import EventLog, SweepProgress
from rstsweep.sweeper.resources import (
    TrialRequest,
    check_fits,
    local_resources,
    ray_session,
    validate_request,
)
from rstsweep.sweeper.spec import Cell
from rstsweep.sweeper.trackers import TrackerHub


@dataclass
class SweepSummary:
    """What one `run_sweep` call did. `done`: cells finished by this run; `skipped`: cells the store
    already held; `failed`: cells that still failed after the retries (pending for the next run)."""

    cells: int
    done: int = 0
    skipped: int = 0
    failed: int = 0
    diverged: int = 0
    wall_s: float = 0.0  # the whole call, Ray start and stop included
    fit_s: float = 0.0  # the Tune experiment alone
    run_dir: Path | None = None
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return self.cells - self.done - self.skipped - self.failed

    def line(self) -> str:
        text = (
            f"{self.cells} cells: {self.done} run now, {self.skipped} already done, "
            f"{self.failed} failed, {self.pending} pending ({format_duration(self.wall_s)})"
        )
        return text + (f"; {self.diverged} diverged" if self.diverged else "")


def unique_cells(cells: Sequence[Any]) -> dict[str, Any]:
    """cell_id -> first cell with it (a cell shared by two groups runs once)."""
    out: dict[str, Any] = {}
    for cell in cells:
        out.setdefault(cell.cell_id, cell)
    return out


def run_sweep(
    cells: Sequence[Any],
    store: Any,
    options: RunOptions,
    train_fn: Callable[..., Any] | None = None,
) -> SweepSummary:
    """Run the not-yet-done `cells` and write each result to `store` as it finishes.

    `options.address`: an existing Ray cluster (default: a local Ray with `num_cpus`/`num_gpus`, or
    the Ray already initialised in this process). `options.progress`: rich live display on stderr
    (None: when stderr is a terminal). `train_fn(config, out_dir, resume, on_epoch) -> TrainResult`
    replaces the
    trainer (tests, benchmarks). Raises RstError, before Ray starts and before the store is
    touched, for a request Ray would reject or no node can hold.
    """
    t0 = time.time()
    o = options
    request = TrialRequest(float(o.cpus_per_trial), float(o.gpus_per_trial))
    # a local Ray is checked before it starts; a cluster (or a Ray already up) once connected
    local = None
    if not o.address and not _ray_is_up():
        gpus = o.num_gpus if o.num_gpus is not None or request.gpus else 0
        local = local_resources(o.num_cpus, gpus)
    validate_request(
        request,
        max_concurrent=o.max_concurrent,
        max_failures=o.max_failures,
        local_cpus=local[0] if local else None,
        local_gpus=local[1] if local else None,
    )
    by_id = unique_cells(cells)
    done = store.done_ids()
    todo = [cid for cid in by_id if cid not in done]
    summary = SweepSummary(cells=len(by_id), skipped=len(by_id) - len(todo))
    if not todo:  # nothing to run: no Ray at all
        store.record_cells(cells, o.profile)
        summary.wall_s = time.time() - t0
        return summary

    world = max((getattr(c.config, "world_size", 1) for c in by_id.values()), default=1)
    if local and world > 1:  # a local Ray is checked before it starts, as above
        check_cluster(
            request.cpus,
            request.gpus,
            world,
            [{"Resources": dict(zip(("CPU", "GPU"), local, strict=True))}],
        )
    with ray_session(o.address, num_cpus=o.num_cpus, num_gpus=o.num_gpus) as ray:
        check_fits(request, ray.nodes())
        if world > 1:  # one bundle per data-parallel worker, possibly over several nodes
            check_cluster(request.cpus, request.gpus, world, ray.nodes())
        claim(store, sweep=_sweep_name(cells), profile=o.profile, force=o.force)
        store.record_cells(cells, o.profile)  # only now: a refused run leaves the store untouched
        if o.probe and train_fn is None:  # the real trainer: its step costs are worth knowing
            _estimate_first(cells, store, o)
        run_dir = _run_dir(store, o.scratch)
        summary.run_dir = run_dir
        t_fit = time.time()
        callback = _fit(
            by_id,
            todo,
            store,
            profile=o.profile,
            request=request,
            max_concurrent=o.max_concurrent,
            max_failures=o.max_failures,
            run_dir=run_dir,
            progress=sys.stderr.isatty() if o.progress is None else o.progress,
            log_every=o.log_every_s,
            trackers=o.trackers,
            train_fn=train_fn,
            members=[(c.group, c.cell_id) for c in cells],
            done=done,
            sweep=_sweep_name(cells),
        )
        summary.fit_s = time.time() - t_fit
    summary.done = len(callback.written)
    summary.failed = len(callback.failed)
    summary.failures = dict(callback.failed)
    summary.diverged = sum(s != "ok" for s in callback.statuses.values())
    summary.wall_s = time.time() - t0
    if not callback.failed and summary.pending == 0:
        # clean run: drop Tune's checkpoints and the work dirs, keep the event log
        shutil.rmtree(run_dir / "tune", ignore_errors=True)
        shutil.rmtree(run_dir / "work", ignore_errors=True)
    return summary


def _ray_is_up() -> bool:
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def _sweep_name(cells: Sequence[Any]) -> str:
    names = sorted({c.sweep for c in cells})
    return ",".join(names) if names else "?"


def _run_dir(store: Any, scratch_dir: str | os.PathLike[str] | None) -> Path:
    root = Path(scratch_dir) if scratch_dir else _default_runs(store)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    run_dir = (root / f"run-{stamp}-{os.getpid()}").absolute()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _default_runs(store: Any) -> Path:
    scratch = getattr(store, "scratch_root", None)  # a Store; tests may pass a bare directory
    return (scratch() if scratch else Path(store.root) / ".scratch") / "runs"


def _cells_dir(store: Any, run_dir: Path) -> Path:
    """Where trials keep their trainer directories, the same for every run of the store: a driver
    killed mid-cell leaves that cell's last epoch checkpoint there, and the next run resumes it."""
    default_runs = _default_runs(store).absolute()
    root = run_dir.parent.parent if run_dir.parent == default_runs else run_dir.parent
    return root / "cells"


def _fit(
    by_id: dict[str, Any],
    todo: list[str],
    store: Any,
    *,
    profile: str,
    request: TrialRequest,
    max_concurrent: int | None,
    max_failures: int,
    run_dir: Path,
    progress: bool,
    log_every: float,
    trackers: tuple[str, ...],
    train_fn: Callable[..., Any] | None,
    members: list[tuple[str, str]],
    done: set[str],
    sweep: str,
) -> Any:
    """One Tune experiment over `todo`; returns the callback (what was written / failed)."""
    from ray import tune

    from rstsweep.sweeper.nodes import NodeWatch
    from rstsweep.sweeper.trial import run_cell
    from rstsweep.sweeper.tune_callback import StoreCallback

    events = EventLog(run_dir / "events.jsonl")
    lines = None if progress else LogLines(sys.stderr, log_every)  # a log file: plain lines
    tracker = SweepProgress(
        members, done, sweep=sweep, profile=profile, store=store, live=progress, lines=lines
    )
    hub = TrackerHub(trackers, store.root, sweep)
    callback = StoreCallback(by_id, store, profile, tracker, events, hub)
    trainable = tune.with_parameters(
        run_cell,
        configs={cid: by_id[cid].config for cid in todo},
        train_fn=train_fn,
        threads=max(1, int(request.cpus)),
        work_root=str(_cells_dir(store, run_dir)),
        crash_marker=os.environ.get(CRASH_ENV) or None,
    )
    world_sizes = {cid: getattr(by_id[cid].config, "world_size", 1) for cid in todo}
    tuner = tune.Tuner(
        tune.with_resources(trainable, trial_resources(request.cpus, request.gpus, world_sizes)),
        param_space={"cell_id": tune.grid_search(todo)},
        tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=str(run_dir),
            verbose=0,
            callbacks=[callback, NodeWatch(events)],  # NodeWatch: says when a node is lost
            failure_config=tune.FailureConfig(max_failures=max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )
    events.log("run", None, cells=len(by_id), todo=len(todo), request=request.as_tune())
    try:
        with tracker, _quiet_tune_logs():
            tuner.fit()
    finally:
        hub.close()
    events.log("end", None, written=len(callback.written), failed=len(callback.failed))
    return callback


class _quiet_tune_logs:
    """Tune logs every trial error with a traceback; the store's failures table and events.jsonl
    already hold them, and the lines would tear the live display."""

    def __enter__(self) -> None:
        self._logger = logging.getLogger("ray.tune")
        self._level = self._logger.level
        self._logger.setLevel(logging.CRITICAL)

    def __exit__(self, *exc: object) -> None:
        self._logger.setLevel(self._level)


def with_absolute_data_dir(cells: Sequence[Cell], data_dir: Path | None) -> list[Cell]:
    """Set every cell's data_dir (a runtime field: cell_ids are unchanged) and make it absolute,
    because Tune runs each trial with its own working directory."""
    out = []
    for cell in cells:
        chosen = data_dir if data_dir is not None else cell.config.data_dir
        if chosen is not None:
            absolute = str(Path(chosen).expanduser().resolve())
            cell = replace(cell, config=cell.config.model_copy(update={"data_dir": absolute}))
        out.append(cell)
    return out


def check_datasets(cells: Sequence[Cell]) -> None:
    """Fail fast (RstError, before Ray starts) when a pending cell's data set cannot be found or
    fetched, instead of every trial failing the same way max_failures times. Downloads, if any,
    happen here once rather than in concurrent trials."""
    wanted = {(c.config.dataset, c.config.data_dir) for c in cells}
    if not wanted:
        return
    from rstsweep.trainers.data import ensure_dataset  # imports torch: only when there is work

    for dataset, data_dir in sorted(wanted, key=str):
        ensure_dataset(dataset, data_dir)


def _estimate_first(cells: Sequence[Cell], store: Any, o: RunOptions) -> None:
    """Before a sweep whose settings were never measured: probe them on the driver's machine (only
    where the probe costs under 1% of the sweep) and print the time estimate on stderr."""
    from rstsweep.sweeper.plan import make_plan
    from rstsweep.sweeper.probe import Resources, probe_for, report_lines, resource_line

    resources = Resources(o.cpus_per_trial, o.gpus_per_trial, o.max_concurrent)
    device, report = probe_for(list(cells), store, resources, only_if_worth=True)
    if report is None:
        return
    for line in report_lines(report):
        print(f"rstsweep: {line}", file=sys.stderr)
    total = make_plan(list(cells), o.sweep, o.profile, store, device=device).total()
    if total.pending and total.pending_time_s is not None:
        print(
            f"rstsweep: estimate (from probes, not measurements): {total.pending} cells, "
            f"{resource_line(total.pending_time_s, resources)}",
            file=sys.stderr,
        )


def run_command(options: RunOptions) -> int:
    """`rstsweep run`/`resume`: expand, run, print one summary line. Exit code 0 when every cell is
    done, 1 when some failed or the run was interrupted (those cells stay pending: run again);
    user errors raise RstError (exit 2)."""
    from rstsweep.store.store import open_store
    from rstsweep.sweeper.guard import refuse_if_live, release
    from rstsweep.sweeper.slices import select
    from rstsweep.sweeper.spec import expand

    o = options
    # YAML, sweep, profile and `--set` errors: before Ray starts
    cells = select(expand(o.file, o.sweep, o.profile, o.overrides), o.slice)
    cells = with_absolute_data_dir(cells, o.data_dir)
    # --world-size N, or --gpus-per-trial N > 1 (N workers of one GPU each)
    world = o.world_size or world_size_for(o.gpus_per_trial)
    if world is not None:
        cells = with_world_size(cells, world)
        o = replace(o, gpus_per_trial=min(1.0, o.gpus_per_trial))
    the_store = open_store(o.store, must_exist=False)
    refuse_if_live(the_store, force=o.force)  # before any download or Ray start
    if o.address is None:  # on a cluster the data lives on the workers: they report it per cell
        check_datasets([c for c in cells if c.cell_id not in the_store.done_ids()])
    progress = (o.progress is not False) and sys.stderr.isatty()
    try:
        summary = run_sweep(cells, the_store, replace(o, progress=progress))
    finally:
        release(the_store)
    print(f"{o.sweep} ({o.profile}): {summary.line()}")
    for cid, error in summary.failures.items():
        print(f"  failed {cid}: {error}")
    from rstsweep.sweeper.report import report_after_run

    report_after_run(o.store, o.file)  # <store>/report.html: a view, never the run's outcome
    return 1 if summary.failed or summary.pending else 0

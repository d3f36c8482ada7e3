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
from typing import TYPE_CHECKING

from rstsweep.core.format import format_duration
from rstsweep.core.names import CRASH_ENV
from rstsweep.sweeper.guard import claim
from rstsweep.sweeper.live import EventLog, SweepProgress
from rstsweep.sweeper.loglines import LogLines
from rstsweep.sweeper.multi import apply_world_size, check_cluster, trial_resources
from rstsweep.sweeper.options import RunOptions
from rstsweep.sweeper.resources import (
    check_fits,
    cluster_gpus,
    local_resources,
    ray_session,
    validate_request,
)
from rstsweep.sweeper.trackers import TrackerHub
from rstsweep.sweeps import Cell

if TYPE_CHECKING:
    from rstsweep.core.result import TrainResult
    from rstsweep.store.store import Store
    from rstsweep.sweeper.tune_callback import StoreCallback


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


def unique_cells(cells: Sequence[Cell]) -> dict[str, Cell]:
    """cell_id -> first cell with it (a cell shared by two groups runs once)."""
    out: dict[str, Cell] = {}
    for cell in cells:
        out.setdefault(cell.cell_id, cell)
    return out


def run_sweep(
    cells: Sequence[Cell],
    store: Store,
    options: RunOptions,
    train_fn: Callable[..., TrainResult] | None = None,
) -> SweepSummary:
    """Run the not-yet-done `cells` and write each result to `store` as it finishes, longest first.

    `options.address`: an existing Ray cluster (default: a local Ray with `num_cpus`/`num_gpus`, or
    the Ray already initialised in this process). GPUs per trial unset: one per trial wherever the
    cluster has GPUs (`RunOptions.with_gpus`). `train_fn(config, out_dir, resume, on_epoch) ->
    TrainResult` replaces the trainer (tests, benchmarks). Raises RstError, before Ray starts and
    before the store is touched, for a request Ray would reject or no node can hold.
    """
    t0 = time.time()
    o = options
    # a local Ray is checked before it starts; a cluster (or a Ray already up) once connected
    local = None
    if not o.address and not _ray_is_up():
        local = local_resources(o.num_cpus, o.num_gpus)
        o = o.with_gpus(local[1])
    validate_request(
        o.placement,
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

    world_sizes = {cid: by_id[cid].config.world_size for cid in todo}
    world = max(world_sizes.values())
    if local and world > 1:  # a local Ray is checked before it starts, as above
        check_cluster(o.placement, world, [{"Resources": {"CPU": local[0], "GPU": local[1]}}])
    with ray_session(o.address, num_cpus=o.num_cpus, num_gpus=o.num_gpus) as ray:
        if local is None:  # joined a cluster (or a Ray already up): its GPUs decide
            o = o.with_gpus(cluster_gpus(ray))
            validate_request(o.placement, max_failures=o.max_failures)
        check_fits(o.placement, ray.nodes())
        if world > 1:  # one bundle per data-parallel worker, possibly over several nodes
            check_cluster(o.placement, world, ray.nodes())
        claim(store, sweep=_sweep_name(cells), profile=o.profile, force=o.force)
        store.record_cells(cells, o.profile)  # only now: a refused run leaves the store untouched
        if o.probe and train_fn is None:  # the real trainer: its step costs are worth knowing
            _estimate_first(cells, store, o)
        order = launch_order(cells, store, o, set(todo))
        work = _Work(list(cells), by_id, order, done, world_sizes)
        summary.run_dir = run_dir_of(store, o.scratch)
        t_fit = time.time()
        callback = _fit(work, store, o, summary.run_dir, train_fn)
        summary.fit_s = time.time() - t_fit
    summary.done = len(callback.written)
    summary.failed = len(callback.failed)
    summary.failures = dict(callback.failed)
    summary.diverged = sum(s != "ok" for s in callback.statuses.values())
    summary.wall_s = time.time() - t0
    if not callback.failed and summary.pending == 0:
        # clean run: drop Tune's checkpoints and the work dirs, keep the event log
        shutil.rmtree(summary.run_dir / "tune", ignore_errors=True)
        shutil.rmtree(summary.run_dir / "work", ignore_errors=True)
    return summary


@dataclass
class _Work:
    """What one Tune experiment runs: the sweep's cells (members of their groups), the unique
    cells by id, the pending ids in launch order, the ids already done, workers per cell."""

    cells: list[Cell]
    by_id: dict[str, Cell]
    todo: list[str]
    done: set[str]
    world_sizes: dict[str, int]


def launch_order(cells: Sequence[Cell], store: Store, o: RunOptions, todo: set[str]) -> list[str]:
    """The pending cell ids, longest estimated cell first (the plan's estimates: measured step
    costs, then the store's probes on the trials' device, then the pass model)."""
    from rstsweep.sweeper.plan import make_plan

    device = "cuda" if o.placement.gpus > 0 else "cpu"
    order = make_plan(list(cells), o.sweep, o.profile, store, device=device).launch_order()
    return [cid for cid in order if cid in todo]


def _ray_is_up() -> bool:
    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())


def _sweep_name(cells: Sequence[Cell]) -> str:
    names = sorted({c.sweep for c in cells})
    return ",".join(names) if names else "?"


def run_dir_of(store: Store, scratch_dir: str | os.PathLike[str] | None) -> Path:
    root = Path(scratch_dir) if scratch_dir else _default_runs(store)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    run_dir = (root / f"run-{stamp}-{os.getpid()}").absolute()
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _default_runs(store: Store) -> Path:
    return store.scratch_root() / "runs"


def cells_dir(store: Store, run_dir: Path) -> Path:
    """Where trials keep their trainer directories, the same for every run of the store: a driver
    killed mid-cell leaves that cell's last epoch checkpoint there, and the next run resumes it."""
    default_runs = _default_runs(store).absolute()
    root = run_dir.parent.parent if run_dir.parent == default_runs else run_dir.parent
    return root / "cells"


def _fit(
    work: _Work,
    store: Store,
    o: RunOptions,
    run_dir: Path,
    train_fn: Callable[..., TrainResult] | None,
) -> StoreCallback:
    """One Tune experiment over `work.todo`, in that order; returns the callback (what was
    written / failed)."""
    from ray import tune

    from rstsweep.sweeper.checkpoints import KeepLast
    from rstsweep.sweeper.nodes import NodeWatch
    from rstsweep.sweeper.trial import run_cell
    from rstsweep.sweeper.tune_callback import StoreCallback

    events = EventLog(run_dir / "events.jsonl")
    live, sweep = o.live_progress(), _sweep_name(work.cells)
    lines = None if live else LogLines(sys.stderr, o.log_every_s)  # a log file: plain lines
    members = [(c.group, c.cell_id) for c in work.cells]
    tracker = SweepProgress(
        members, work.done, sweep=sweep, profile=o.profile, store=store, live=live, lines=lines
    )
    hub = TrackerHub(o.trackers, store.root, sweep)
    callback = StoreCallback(work.by_id, store, o.profile, tracker, events, hub)
    placement = o.placement
    trainable = tune.with_parameters(
        run_cell,
        configs={cid: work.by_id[cid].config for cid in work.todo},
        train_fn=train_fn,
        threads=max(1, int(placement.cpus)),
        work_root=str(cells_dir(store, run_dir)),
        crash_marker=os.environ.get(CRASH_ENV) or None,
        report_every_s=o.report_every_s,
    )
    tuner = tune.Tuner(
        tune.with_resources(trainable, trial_resources(placement, work.world_sizes)),
        param_space={"cell_id": tune.grid_search(work.todo)},
        tune_config=tune.TuneConfig(max_concurrent_trials=placement.slots, reuse_actors=True),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=str(run_dir),
            verbose=0,
            # NodeWatch: says when a node is lost; KeepLast: one checkpoint per trial on disk
            callbacks=[callback, NodeWatch(events), KeepLast()],
            failure_config=tune.FailureConfig(max_failures=o.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),  # see sweeper.checkpoints
        ),
    )
    events.log("run", None, cells=len(work.by_id), todo=len(work.todo), request=placement.as_tune())
    try:
        with tracker, quiet_tune_logs():
            tuner.fit()
    finally:
        hub.close()
    events.log("end", None, written=len(callback.written), failed=len(callback.failed))
    return callback


class quiet_tune_logs:
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


def _estimate_first(cells: Sequence[Cell], store: Store, o: RunOptions) -> None:
    """Before a sweep whose settings were never measured: probe them on the driver's machine (only
    where the probe costs under 1% of the sweep) and print the time estimate on stderr."""
    from rstsweep.sweeper.estimates import probe_for, report_lines, resource_line
    from rstsweep.sweeper.plan import make_plan

    device, report = probe_for(list(cells), store, o.placement, only_if_worth=True)
    if report is None:
        return
    for line in report_lines(report):
        print(f"rstsweep: {line}", file=sys.stderr)
    total = make_plan(list(cells), o.sweep, o.profile, store, device=device).total()
    if total.pending and total.pending_time_s is not None:
        print(
            f"rstsweep: estimate (from probes, not measurements): {total.pending} cells, "
            f"{resource_line(total.pending_time_s, o.placement)}",
            file=sys.stderr,
        )


def run_command(options: RunOptions) -> int:
    """`rstsweep run`/`resume`: expand, run, print one summary line. Exit code 0 when every cell is
    done, 1 when some failed or the run was interrupted (those cells stay pending: run again);
    user errors raise RstError (exit 2)."""
    from rstsweep.store.store import open_store
    from rstsweep.sweeper.guard import refuse_if_live, release
    from rstsweep.sweeper.slices import select
    from rstsweep.sweeps import expand

    o = options
    # YAML, sweep, profile and `--set` errors: before Ray starts
    cells = select(expand(o.file, o.sweep, o.profile, o.overrides), o.slice)
    cells = with_absolute_data_dir(cells, o.data_dir)
    cells, o = apply_world_size(cells, o)
    the_store = open_store(o.store, must_exist=False)
    refuse_if_live(the_store, force=o.force)  # before any download or Ray start
    if o.address is None:  # on a cluster the data lives on the workers: they report it per cell
        check_datasets([c for c in cells if c.cell_id not in the_store.done_ids()])
    try:
        summary = run_sweep(cells, the_store, o)
    finally:
        release(the_store)
    print(f"{o.sweep} ({o.profile}): {summary.line()}")
    for cid, error in summary.failures.items():
        print(f"  failed {cid}: {error}")
    from rstsweep.sweeper.report import report_after_run

    report_after_run(o.store, o.file)  # <store>/report.html: a view, never the run's outcome
    return 1 if summary.failed or summary.pending else 0

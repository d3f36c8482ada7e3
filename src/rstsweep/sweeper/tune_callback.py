"""The driver side of a sweep run: a Ray Tune callback that writes the Parquet store.

Runs in the driver process (Tune calls callbacks from its control loop), so results reach the store
even when trials run on other nodes. Each cell is written once: its final result as a `trials`
row (plus epochs and draws) the moment its trial reports it; a trial that still fails after
`max_failures` retries as a `failures` row (the cell stays pending and the next run retries it).
It also feeds the live progress display / heartbeat, the run's event log and the experiment
trackers (`sweeper.trackers`, which never block it). As the run's single writer (`sweeper.guard`) it
keeps the store fast: after each result it merges part files that piled up
(`Store.compact_if_due`), and at the end of the run it merges each table into one part
(`Store.compact`), with the same crash-safe rules as `rstsweep compact`.

Imported only after Ray is up (module-level `ray.tune` import).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ray import tune
from ray.tune.experiment import Trial

from rstsweep.errors import RstError
from rstsweep.sweeper.live import EventLog, SweepProgress
from rstsweep.sweeper.trackers import TrackerHub, cell_info, epoch_metrics
from rstsweep.sweeper.trial import FINAL_KEY, payload_to_result
from rstsweep.sweeps import Cell

if TYPE_CHECKING:
    from rstsweep.store.store import Store

PLACEMENT_KEYS = ("node_id", "gpu_ids", "cuda_visible", "pid")


class StoreCallback(tune.Callback):
    """Tune events -> store rows, progress, events.jsonl."""

    def __init__(
        self,
        cells: dict[str, Cell],
        store: Store,
        profile: str,
        progress: SweepProgress,
        events: EventLog,
        trackers: TrackerHub | None = None,
    ) -> None:
        self.cells, self.store, self.profile = cells, store, profile
        self.progress, self.events = progress, events
        self.trackers = trackers or TrackerHub((), Path("."), "")
        self.written: set[str] = set()
        self.failed: dict[str, str] = {}
        self.statuses: dict[str, str] = {}

    def __getstate__(self) -> dict[str, object]:
        # The Tuner pickles its run config (callbacks included) into the scratch dir for
        # `Tuner.restore`, which rstsweep never uses (the store is the resume state): pickle only
        # the plain bookkeeping, not the live display, lock and store handle.
        return {k: v for k, v in self.__dict__.items() if k in ("written", "failed", "statuses")}

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: object
    ) -> None:
        cid = trial.config["cell_id"]
        self.progress.start(cid)
        self.events.log("start", cid, failures=trial.num_failures)
        self.trackers.start(cid, cell_info(self.cells[cid], self.profile))

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: object
    ) -> None:
        cid = trial.config["cell_id"]
        error = trial_error(trial)
        self.progress.retry(cid, error)
        self.events.log("retry", cid, failures=trial.num_failures, error=error)

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: object
    ) -> None:
        cid = trial.config["cell_id"]
        placement = {k: result.get(k) for k in PLACEMENT_KEYS}
        if FINAL_KEY in result:
            # pop: Tune keeps the last result in its experiment state; the payload is in the store
            payload = result.pop(FINAL_KEY)
            self._write(cid, payload, result.get("start_epoch"), placement)
        elif "epoch" in result:
            epoch = int(result["epoch"])
            self.progress.epoch(cid, epoch, result.get("epochs"))
            self.trackers.epoch(cid, epoch, epoch_metrics(result))
            self.events.log(
                "epoch",
                cid,
                epoch=epoch,
                failures=trial.num_failures,
                test_error=result.get("test_error"),
                **placement,
            )

    def _write(self, cid: str, payload: dict, start_epoch: int | None, placement: dict) -> None:
        if cid in self.written:  # a retry after the final report: the cell is already stored
            return
        result = payload_to_result(payload)
        attempt = self.store.write_result(self.cells[cid], result, self.profile)
        self.written.add(cid)
        self._compact(full=False)
        self.statuses[cid] = result.status
        self.progress.finish(cid, result.status)
        final = {"test_error": result.test_error, "realized_extra": result.realized_extra}
        self.trackers.end(cid, result.status, final)
        self.events.log(
            "done",
            cid,
            status=result.status,
            attempt_id=attempt,
            start_epoch=start_epoch,
            train_time_s=result.train_time_s,
            **placement,
        )

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: object
    ) -> None:
        cid = trial.config["cell_id"]
        if cid not in self.written:  # returned without a final report: cannot count as done
            self._fail(cid, "trial ended without reporting a result")

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: object
    ) -> None:
        cid = trial.config["cell_id"]
        if cid not in self.written:
            self._fail(cid, trial_error(trial) or "trial failed")

    def _fail(self, cid: str, error: str) -> None:
        self.failed[cid] = error
        self.store.write_failure(self.cells[cid], error)
        self.progress.fail(cid, error)
        self.trackers.end(cid, "failed")
        self.events.log("failed", cid, error=error)

    def on_step_end(self, iteration: int, trials: list[Trial], **info: object) -> None:
        self.progress.tick()

    def on_experiment_end(self, trials: list[Trial], **info: object) -> None:
        self._compact(full=True)

    def _compact(self, *, full: bool) -> None:
        """Merge small part files; a failure (a full disk, an object store hiccup) costs only
        speed, so it is logged and the run goes on (the inputs stay: nothing is lost)."""
        try:
            if full:
                self.store.compact()
            else:
                self.store.compact_if_due()
        except (OSError, RstError) as exc:
            self.events.log("compact-failed", None, error=f"{type(exc).__name__}: {exc}")


def _load_error(trial: Trial) -> BaseException | None:
    """The exception Tune pickled for the trial's latest failure (the local copy: the one in
    storage may not be synced yet when the callback runs)."""
    import ray.cloudpickle as cloudpickle

    path = trial.pickled_error_file
    try:
        if path:
            with open(path, "rb") as fh:
                return cloudpickle.load(fh)
        return trial.get_pickled_error()
    except Exception:
        return None


def trial_error(trial: Trial) -> str | None:
    """One line describing the trial's latest error (the user exception, or a dead worker)."""
    exc = _load_error(trial)
    if exc is None:
        return None
    from ray.exceptions import RayActorError, RayTaskError

    if isinstance(exc, RayTaskError):
        cause = exc.as_instanceof_cause()
        if isinstance(cause, RayActorError):
            return "the trial's worker process died"
        inner = exc.cause or cause
        text = str(inner).strip().splitlines()
        return f"{type(inner).__name__}: {text[-1] if text else ''}".strip()
    if isinstance(exc, RayActorError):
        return "the trial's worker process died"
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"

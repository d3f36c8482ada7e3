"""Experiment trackers fed from the driver: TensorBoard (default), MLflow, Weights & Biases.

Every cell becomes one tracker run with its per-epoch train/test loss and error, learning rate and
realized extra compute (SA steps / steps so far, the realized Δη of Zhao et al.'s Randomized
Sharpness-Aware Training), and ends with its status. The Parquet store stays the truth: trackers
are a view. The driver's Tune callback hands events to a `TrackerHub`, which queues them (bounded,
never blocking) for one worker thread; a tracker that raises, is slow or cannot be reached costs
one warning and is dropped, and never delays or fails the sweep. Libraries are imported in that
thread, only for the trackers asked for.

Where runs go: TensorBoard event files under `<dir>/tensorboard/<sweep>/<group>/<label>_<cell>`
with the cell as an HParams session (`tracker_tensorboard`); MLflow to `MLFLOW_TRACKING_URI`
(default: a file store `<dir>/mlruns`), experiment `MLFLOW_EXPERIMENT_NAME` or `rstsweep-<sweep>`;
W&B to project `WANDB_PROJECT` or `rstsweep-<sweep>` (`WANDB_MODE=offline` writes under
`<dir>/wandb/`). `<dir>` is the store's directory; for a store on object storage (s3://, gs://)
it is local: `RSTSWEEP_TRACKER_DIR`, else the store's local scratch directory, and the run says
where. A retried or resumed cell continues its tracker run, and a killed driver's MLflow runs end
as KILLED on the next `run` or `status` (`tracker_runs`). No ray, no torch.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rstsweep.errors import RstError
from rstsweep.sweeper.tracker_runs import (
    StoreRoot,
    end_stale_mlflow_runs,
    mlflow_uri,
    open_mlflow_run,
    run_id,
    tracker_dir,
)

if TYPE_CHECKING:
    from wandb.sdk.wandb_run import Run as WandbRun

    from rstsweep.sweeps import Cell


class Tracker(Protocol):
    """What the hub feeds: one run per cell, started, given epochs, ended; closed at the end."""

    def start(self, cid: str, info: dict[str, object]) -> None: ...
    def epoch(self, cid: str, step: int, metrics: dict[str, float]) -> None: ...
    def end(self, cid: str, status: str, summary: dict[str, float]) -> None: ...
    def close(self) -> None: ...


TRACKERS = ("tensorboard", "mlflow", "wandb")
DEFAULT_TRACKERS = ("tensorboard",)
PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}
QUEUE_SIZE = 10_000  # events; a sweep's epochs far exceed what a stuck tracker may hold back
# per-epoch result keys -> tracker metric names
METRICS = {
    "train_loss": "train/loss",
    "train_error": "train/error",
    "test_loss": "test/loss",
    "test_error": "test/error",
    "lr": "lr",
}


def parse_trackers(names: Iterable[str] | None) -> tuple[str, ...]:
    """`--tracker` values -> tracker names (None: the default; `none`: no tracker). RstError for an
    unknown name or a tracker whose library is not installed."""
    if names is None:  # the default only where installed (`rstsweep[run]` alone has no tensorboard)
        return tuple(n for n in DEFAULT_TRACKERS if importlib.util.find_spec(PACKAGES[n]))
    chosen = tuple(dict.fromkeys(n.strip().lower() for n in names))
    if "none" in chosen:
        if len(chosen) > 1:
            raise RstError("--tracker: 'none' cannot be combined with other trackers")
        return ()
    for name in chosen:
        if name not in TRACKERS:
            raise RstError(f"--tracker: {name!r} is not one of {', '.join(TRACKERS)}, none")
        if importlib.util.find_spec(PACKAGES[name]) is None:
            raise RstError(
                f"--tracker {name}: the {PACKAGES[name]} package is not installed "
                "(pip install 'rstsweep[trackers]')"
            )
    return chosen


def epoch_metrics(result: dict[str, object]) -> dict[str, float]:
    """The tracker metrics of one epoch report (keys of `METRICS` plus realized extra compute)."""
    out = {name: float(result[key]) for key, name in METRICS.items() if result.get(key) is not None}
    steps, sa_steps = result.get("steps"), result.get("sa_steps")
    if steps:
        out["extra/realized"] = float(sa_steps or 0) / float(steps)
    if result.get("time_s") is not None:
        out["time/train_s"] = float(result["time_s"])
    return out


def cell_info(cell: Cell, profile: str) -> dict[str, object]:
    """What a tracker run is named and tagged with: the cell's place in its sweep and config."""
    return {
        "cell_id": cell.cell_id,
        "sweep": cell.sweep,
        "group": cell.group,
        "label": cell.label,
        "profile": profile,
        "config": cell.config.model_dump(mode="json"),
    }


def run_name(info: dict[str, object]) -> str:
    """`<label>_<cell_id>`, safe as a directory name."""
    label = re.sub(r"[^A-Za-z0-9_.=,+-]+", "-", str(info.get("label") or info["group"]))
    return f"{label}_{info['cell_id']}"


class MlflowTracker:
    """One MLflow run per cell, in one experiment per sweep (the tracking client, no fluent API:
    concurrent cells are concurrent runs)."""

    def __init__(self, root: StoreRoot, sweep: str) -> None:
        from mlflow import MlflowClient

        self.root = root
        self.client = MlflowClient(tracking_uri=mlflow_uri(root))
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME") or f"rstsweep-{sweep}"
        found = self.client.get_experiment_by_name(name)
        self.experiment = found.experiment_id if found else self.client.create_experiment(name)
        self.runs: dict[str, str] = {}
        # this run holds the store (sweeper.guard): RUNNING runs of it are a killed driver's
        end_stale_mlflow_runs(self.client, root)

    def start(self, cid: str, info: dict[str, object]) -> None:
        """Continue the cell's unfinished run (a retry, a resume) or open its next attempt's."""

        def create(keys: dict[str, str]) -> str:
            tags = {k: str(info[k]) for k in ("cell_id", "sweep", "group", "label", "profile")}
            run = self.client.create_run(
                self.experiment, run_name=run_name(info), tags={**tags, **keys}
            )
            from mlflow.entities import Param

            params = [Param(k, str(v)[:500]) for k, v in sorted(info["config"].items())]
            self.client.log_batch(run.info.run_id, params=params)
            return run.info.run_id

        self.runs[cid] = open_mlflow_run(self.client, self.experiment, self.root, cid, create)

    def epoch(self, cid: str, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, step) for k, v in metrics.items()]
        self.client.log_batch(self.runs[cid], metrics=batch)

    def end(self, cid: str, status: str, summary: dict[str, float]) -> None:
        run_id = self.runs.pop(cid)
        self.client.set_tag(run_id, "status", status)
        self.client.set_terminated(run_id, "FINISHED" if status != "failed" else "FAILED")

    def close(self) -> None:
        for open_run in self.runs.values():
            self.client.set_terminated(open_run, "KILLED")


class WandbTracker:
    """One W&B run per cell (`reinit="create_new"`: concurrent cells are concurrent runs), grouped
    by sweep group."""

    def __init__(self, root: StoreRoot, sweep: str) -> None:
        import wandb

        self.wandb, self.root = wandb, root
        self.project = os.environ.get("WANDB_PROJECT") or f"rstsweep-{sweep}"
        default = tracker_dir(root)[0]
        self.dir = Path(os.environ["WANDB_DIR"]) if os.environ.get("WANDB_DIR") else default
        self.dir.mkdir(parents=True, exist_ok=True)
        self.runs: dict[str, WandbRun] = {}

    def start(self, cid: str, info: dict[str, object]) -> None:
        # the derived id: a retried or resumed cell continues its run (`resume="allow"`)
        self.runs[cid] = self.wandb.init(
            id=run_id(self.root, cid),
            resume="allow",
            project=self.project,
            name=run_name(info),
            group=info["group"],
            tags=[info["sweep"], info["profile"]],
            config={**info["config"], "cell_id": cid},
            dir=str(self.dir),
            reinit="create_new",
        )

    def epoch(self, cid: str, step: int, metrics: dict[str, float]) -> None:
        self.runs[cid].log(metrics, step=step)

    def end(self, cid: str, status: str, summary: dict[str, float]) -> None:
        run = self.runs.pop(cid)
        run.summary.update({"status": status, **summary})
        run.finish(exit_code=0 if status != "failed" else 1)

    def close(self) -> None:
        for run in self.runs.values():
            run.finish(exit_code=1)


from rstsweep.sweeper.tracker_tensorboard import TensorBoardTracker  # noqa: E402

BUILDERS = {"tensorboard": TensorBoardTracker, "mlflow": MlflowTracker, "wandb": WandbTracker}


def safe_name(text: str) -> str:
    """`text` safe as one directory name."""
    return re.sub(r"[^A-Za-z0-9_.=,+-]+", "-", text) or "_"


class TrackerHub:
    """The driver's side: non-blocking `start`/`epoch`/`end` calls, one worker thread that builds
    the trackers (when the hub is made) and feeds them. `close(timeout)` waits at most `timeout`.
    `root`: the store's root (a local directory, or a URL some trackers cannot write under)."""

    def __init__(
        self,
        names: Iterable[str],
        root: StoreRoot,
        sweep: str,
        warn: Callable[[str], object] | None = None,
    ) -> None:
        self.names, self.root, self.sweep = tuple(names), root, sweep
        stream = sys.stderr  # the stream of the log lines, bound once
        self._warn_fn = warn or (lambda text: print(f"rstsweep: warning: {text}", file=stream))
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self._trackers: dict[str, Tracker] = {}
        self._warned: set[str] = set()
        self._started: set[str] = set()
        self._thread = threading.Thread(target=self._work, name="rstsweep-trackers", daemon=True)
        if self.names:
            self._thread.start()

    # -- driver side (never blocks)

    def start(self, cid: str, info: dict[str, object]) -> None:
        """A cell's run begins (a retried trial continues the same tracker run)."""
        if cid not in self._started:
            self._started.add(cid)
            self._put(("start", cid, info))

    def epoch(self, cid: str, step: int, metrics: dict[str, float]) -> None:
        if cid in self._started:
            self._put(("epoch", cid, step, metrics))

    def end(self, cid: str, status: str, summary: dict[str, float] | None = None) -> None:
        if cid in self._started:
            self._started.discard(cid)
            self._put(("end", cid, status, summary or {}))

    def close(self, timeout: float = 30.0) -> None:
        if not self.names:
            return
        self._put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._warn("trackers", f"trackers still busy after {timeout:.0f} s; not waiting")

    def _put(self, item: tuple | None) -> None:
        if not self.names:
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._warn(
                "queue", "trackers fall behind: dropping tracker events (the store is complete)"
            )

    def _warn(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._warn_fn(text)

    # -- worker thread

    def _work(self) -> None:
        try:
            self._feed()
        except BaseException as exc:  # never silent: say why the trackers stopped
            self._warn("thread", f"trackers stopped: {_one_line(exc)}")

    def _feed(self) -> None:
        for name in self.names:
            try:
                self._trackers[name] = BUILDERS[name](self.root, self.sweep)
            except Exception as exc:
                self._warn(name, f"tracker {name} disabled: {_one_line(exc)}")
        while True:
            item = self._queue.get()
            if item is None:
                break
            for name, tracker in list(self._trackers.items()):
                try:
                    getattr(tracker, item[0])(*item[1:])
                except Exception as exc:
                    self._warn(name, f"tracker {name} disabled: {_one_line(exc)}")
                    del self._trackers[name]
        for name, tracker in self._trackers.items():
            try:
                tracker.close()
            except Exception as exc:
                self._warn(name, f"tracker {name}: {_one_line(exc)}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"

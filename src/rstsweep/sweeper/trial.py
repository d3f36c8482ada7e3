"""The Ray Tune trial: run one sweep cell inside a Ray worker, resumable from its last epoch.

`run_cell` is the Tune function trainable (Ray Tune 2.60 API only: `tune.report`,
`tune.get_checkpoint`, `tune.Checkpoint`; nothing from `ray.train`, which raises inside Tune
trials). It looks its cell config up by the `cell_id` Tune hands it, restores the trainer's
`checkpoint.pt` from Tune's last checkpoint when Tune retries a crashed trial, reports every epoch
with that epoch's trainer checkpoint attached, and reports the final `TrainResult` as plain data
under `FINAL_KEY`. The driver (not the trial) writes the store, so workers need no access to it.

Imported only in Ray workers and by the driver after Ray is up (module-level `ray` import).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from ray import tune

from rstsweep.core.atomic import atomic_write_text
from rstsweep.core.names import CHECKPOINT_NAME
from rstsweep.core.result import EpochRecord, TrainResult
from rstsweep.plugins import load_plugins
from rstsweep.store.rows import pack_draws, pack_signal, unpack_draws, unpack_signal
from rstsweep.sweeper.resources import memory_share

if TYPE_CHECKING:
    from rstsweep.core.config import CellConfig

FINAL_KEY = "rst_result"
EPOCH_MARKER = "epoch"  # beside a checkpoint.pt: the epoch it ends at

TrainFn = Callable[..., TrainResult]


def default_train(
    config: CellConfig, out_dir: Path, resume: bool, on_epoch: Callable
) -> TrainResult:
    """The real trainer (imported here: torch loads in the worker, not the driver); a cell with
    world_size > 1 runs data-parallel over the trial's placement group (`sweeper.multi`)."""
    require_given_gpu(config)
    if config.world_size > 1:
        from rstsweep.sweeper.multi import train_multi

        return train_multi(config, out_dir, resume, on_epoch)
    from rstsweep.trainers.loop import train

    return train(config, out_dir=out_dir, resume=resume, on_epoch=on_epoch)


def run_cell(
    params: dict[str, str],
    configs: dict[str, CellConfig],
    train_fn: TrainFn | None = None,
    threads: int | None = None,
    work_root: str | None = None,
    crash_marker: str | None = None,
    report_every_s: float = 0.0,
) -> None:
    """Tune trainable for the cell `params["cell_id"]` (configs come via `tune.with_parameters`).
    `report_every_s`: at most one epoch report (with its checkpoint) this often; 0: every epoch."""
    load_plugins()  # a user's schedule family, algorithm, ... registered on this worker too
    cell_id = params["cell_id"]
    hide_gpus_unless_given()
    config = with_threads(configs[cell_id], threads)
    work = work_dir(work_root, cell_id)
    start_epoch = _restore(work)
    placement = trial_placement()
    reporter = _EpochReporter(work, config.epochs, crash_marker, placement, report_every_s)
    train = train_fn or default_train
    result = train(config, work, resume=start_epoch > 0, on_epoch=reporter)
    tune.report({FINAL_KEY: result_to_payload(result), "start_epoch": start_epoch, **placement})
    shutil.rmtree(work, ignore_errors=True)


def with_threads(config: CellConfig, threads: int | None) -> CellConfig:
    # torch threads = the CPUs Ray reserved for the trial; GPU memory cap = the trial's share of
    # its GPU when several trials are packed on one (both runtime-only: cell_id unchanged); a
    # config that already sets them wins.
    update: dict[str, object] = {}
    if threads and config.threads is None:
        update["threads"] = threads
    share = memory_share(_assigned_gpus())
    if share is not None and config.memory_fraction is None:
        update["memory_fraction"] = share
    return config.model_copy(update=update) if update else config


def hide_gpus_unless_given() -> None:
    """A trial (or worker) that asked for no GPU sees none: Ray 2.60 leaves CUDA_VISIBLE_DEVICES
    unset for such a task, so `device: auto` would pick cuda:0, a GPU another trial was given."""
    if not _given_gpu_ids():
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


def require_given_gpu(config: CellConfig) -> None:
    """A trial given a GPU that cannot see one fails (one line) instead of training on CPU."""
    ids = _given_gpu_ids()
    if not ids or not str(config.device).startswith(("auto", "cuda")):
        return
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError(
            f"this trial was given GPU {','.join(ids)} but torch sees no CUDA device "
            f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES')!r}): check the "
            "node's GPU driver, or run with --gpus-per-trial 0"
        )


def _given_gpu_ids() -> list[str]:
    """The GPU ids Ray gave this worker (placement-group bundles included); none outside Ray."""
    import ray

    if not ray.is_initialized():  # not in a Ray worker (asking would start a local Ray)
        return []
    return [str(g) for g in ray.get_runtime_context().get_accelerator_ids().get("GPU", [])]


def _assigned_gpus() -> float:
    """The GPUs Ray reserved for this trial (fractional when packed)."""
    import ray

    if not ray.is_initialized():  # not in a Ray worker (asking would start a local Ray)
        return 0.0
    return float(ray.get_runtime_context().get_assigned_resources().get("GPU", 0.0))


def work_dir(work_root: str | None, cell_id: str) -> Path:
    """The cell's trainer directory, stable across runs: a driver killed mid-cell leaves the
    trainer's last epoch checkpoint here and the next run resumes from it. Snapshots a killed
    reporter left behind are removed; the trainer clears its own temporary files."""
    for root in (work_root, os.path.join(tempfile.gettempdir(), "rstsweep-work")):
        if not root:
            continue
        work = Path(root) / cell_id
        with contextlib.suppress(OSError):
            work.mkdir(parents=True, exist_ok=True)
            for stale in work.glob(".ckpt-*"):
                shutil.rmtree(stale, ignore_errors=True)
            return work
    raise OSError(f"cannot create a work directory for cell {cell_id}")


def _restore(work: Path) -> int:
    """Put the checkpoint to resume from in `work`; return the epoch it ends at (0: none).
    Tune's last checkpoint (a retry of a crashed trial) wins over one left by an earlier run."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            shutil.copy2(Path(directory) / CHECKPOINT_NAME, work / CHECKPOINT_NAME)
            return _read_epoch(Path(directory) / EPOCH_MARKER)
    if (work / CHECKPOINT_NAME).exists():  # an earlier run was killed while this cell ran
        return _read_epoch(work / EPOCH_MARKER)
    return 0


def _read_epoch(marker: Path) -> int:
    """The epoch a checkpoint ends at, as its marker says (informational: the trainer's own
    checkpoint holds the true position; a missing or torn marker reads as 1)."""
    try:
        return int(marker.read_text())
    except (OSError, ValueError):
        return 1


def trial_placement() -> dict[str, object]:
    """Where this trial runs (node, GPU ids Ray assigned, pid): reported for the event log."""
    import ray

    return {
        "node_id": ray.get_runtime_context().get_node_id(),
        "gpu_ids": _given_gpu_ids(),
        "cuda_visible": os.environ.get("CUDA_VISIBLE_DEVICES"),  # what torch in the trial sees
        "pid": os.getpid(),
    }


class _EpochReporter:
    """`on_epoch` callback: report the epoch's metrics with the trainer's checkpoint attached."""

    def __init__(
        self,
        work: Path,
        epochs: int | None,
        crash_marker: str | None,
        placement: dict,
        every_s: float = 0.0,
    ) -> None:
        self.work, self.epochs, self.crash_marker = work, epochs, crash_marker
        self.placement, self.every_s = placement, every_s
        self._last_stat: tuple[int, int] | None = None
        self._last_report = -float("inf")

    def __call__(self, record: EpochRecord) -> None:
        # Each report costs the driver a result to process and a checkpoint to persist; epochs far
        # shorter than that (a stand-in, a tiny cell) are thinned. Nothing is lost: the trainer's
        # own checkpoint is in the work dir and the final result holds every epoch.
        now = time.monotonic()
        if now - self._last_report < self.every_s:
            return
        self._last_report = now
        metrics = {"epoch": record.epoch, "epochs": self.epochs, **asdict(record), **self.placement}
        checkpoint_dir = self._snapshot(record.epoch)
        try:
            checkpoint = tune.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
            tune.report(metrics, checkpoint=checkpoint)  # persists the checkpoint before returning
        finally:
            if checkpoint_dir:
                shutil.rmtree(checkpoint_dir, ignore_errors=True)
        self._maybe_crash(record.epoch)

    def _snapshot(self, epoch: int) -> str | None:
        """Hard-link the current checkpoint.pt into a fresh directory (the trainer replaces the file
        atomically, so the link keeps this epoch's bytes); None if no new checkpoint was written
        (a diverged epoch is not checkpointed)."""
        source = self.work / CHECKPOINT_NAME
        try:
            stat = source.stat()
        except FileNotFoundError:
            return None
        key = (stat.st_ino, stat.st_mtime_ns)
        if key == self._last_stat:
            return None
        self._last_stat = key
        directory = Path(tempfile.mkdtemp(prefix=".ckpt-", dir=self.work))
        try:
            os.link(source, directory / CHECKPOINT_NAME)
        except OSError:
            shutil.copy2(source, directory / CHECKPOINT_NAME)
        (directory / EPOCH_MARKER).write_text(str(epoch))
        # the same marker beside the work checkpoint, for a later run's resume
        atomic_write_text(self.work / EPOCH_MARKER, str(epoch))
        return str(directory)

    def _maybe_crash(self, epoch: int) -> None:
        if not self.crash_marker or epoch != 1:
            return
        try:
            fd = os.open(self.crash_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        os.write(fd, f"{os.getpid()} {time.time()}\n".encode())
        os.close(fd)
        os._exit(17)  # die like a killed process: no exception, no cleanup, no report


def result_to_payload(result: TrainResult) -> dict[str, object]:
    """A TrainResult as plain picklable data (epochs as dicts, draws bit-packed)."""
    payload = {f.name: getattr(result, f.name) for f in fields(result)}
    draws = np.asarray(result.draws, dtype=bool)
    payload["epochs"] = [asdict(e) for e in result.epochs]
    payload["draws"] = {"steps": int(draws.size), "bits": pack_draws(draws)}
    payload["signals"] = pack_signal(result.signals)
    return payload


def payload_to_result(payload: dict[str, object]) -> TrainResult:
    """Inverse of `result_to_payload`."""
    data = dict(payload)
    draws = data.pop("draws")
    data["draws"] = unpack_draws(draws["bits"], int(draws["steps"]))
    data["signals"] = unpack_signal(data.get("signals"))
    data["epochs"] = [EpochRecord(**e) for e in data["epochs"]]
    return TrainResult(**data)

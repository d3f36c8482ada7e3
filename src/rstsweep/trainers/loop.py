"""The one training loop every sweep cell runs, on one process or on N data-parallel ones:
`train(config) -> TrainResult`, the epoch it repeats (`run_epoch`) and the epoch's record.

Per global step t (0 ≤ t < T = steps_per_epoch × epochs) the precomputed coin X_t ~ Bernoulli(p(t))
(`rstsweep.schedules`, seeded by `config.seed`) chooses a one-pass base step or the sharpness-aware
step of `config.algorithm` (Zhao et al., "Randomized Sharpness-Aware Training"); `step.py` has the
step, `run.py` the built run, `checkpoint.py` what a checkpoint holds.

Where one process and N differ, the loop asks its `ProcessGroup`: `ONE_PROCESS` here,
`distributed.DataParallel` for N workers (the main process, rank 0, alone evaluates, checkpoints,
reports epochs and writes the final weights; the train metrics are averaged over the workers).

Accounting: losses and correct counts are accumulated on the device and read once per epoch (no
per-step host-device sync); that read is also where divergence is detected (a non-finite epoch
loss stops the run with status "diverged"). Step wall times are split by branch (`timing.py`);
the means leave out each branch's first step in a process (warm-up). `train_time_s` covers all
training, not evaluation.

Checkpoints: with `out_dir`, an atomic `checkpoint.pt` is written at every epoch boundary and
`resume=True` continues from it, ending bit-identical to an uninterrupted run (wall times aside).
A diverged epoch is never checkpointed (nor is a non-finite fp16 forward: it counts as divergence;
an fp16 step whose gradients overflow is skipped by the loss scaler, see `precision.py`). GPU runs
are as deterministic as cuDNN's default algorithms (benchmark off); `deterministic: true` turns on
torch's deterministic algorithms for bit-identical GPU resumes.

Every result carries its peak device memory and a reproducibility manifest (`manifest.py`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from rstsweep.core.config import CellConfig
from rstsweep.core.names import CHECKPOINT_NAME, FINAL_WEIGHTS_NAME
from rstsweep.core.result import EpochRecord, TrainResult
from rstsweep.trainers.augment import mixup_batches, test_batches, train_batches
from rstsweep.trainers.checkpoint import (
    atomic_torch_save,
    checkpoint_state,
    remove_stale_temporaries,
    restore_run,
)
from rstsweep.trainers.draws import PolicyDraws, ScheduleDraws
from rstsweep.trainers.manifest import collect_manifest
from rstsweep.trainers.memory import peak_memory_bytes
from rstsweep.trainers.progress import progress_bar
from rstsweep.trainers.run import Run, build_run
from rstsweep.trainers.runtime import to_memory_format
from rstsweep.trainers.step import evaluate, train_step

EVAL_BATCH_SIZE = 1024


class ProcessGroup(Protocol):
    """What the loop needs to know about the processes that train one run together."""

    rank: int
    world: int

    def join(self, run: Run) -> None:
        """Make the run's steps this group's (data-parallel: DDP, per-worker first passes)."""

    def resume(self, run: Run, checkpoint: Path | None) -> None:
        """Continue every process from `checkpoint` (read by the main process; None: fresh)."""

    def mean(self, values: tuple[float, float], device: torch.device) -> tuple[float, float]:
        """The mean of the processes' values (each trained an equal part of every batch)."""

    def stop(self, stop: bool, device: torch.device) -> bool:
        """The main process's decision to stop, on every process."""


class OneProcess:
    """The process group of a run trained by this process alone."""

    rank, world = 0, 1

    def join(self, run: Run) -> None:
        pass

    def resume(self, run: Run, checkpoint: Path | None) -> None:
        if checkpoint is not None and checkpoint.exists():
            restore_run(run, checkpoint)

    def mean(self, values: tuple[float, float], device: torch.device) -> tuple[float, float]:
        return values

    def stop(self, stop: bool, device: torch.device) -> bool:
        return stop


ONE_PROCESS = OneProcess()


def train(
    config: CellConfig,
    out_dir: Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    progress: bool = False,
    group: ProcessGroup = ONE_PROCESS,
) -> TrainResult:
    """Run one cell. With `out_dir`, write `checkpoint.pt` at every epoch boundary and
    `final.pt` (the model's state_dict) at the end; `resume=True` continues from an existing
    checkpoint (and starts fresh when there is none). `on_epoch` gets each EpochRecord after its
    checkpoint is on disk. `progress` shows a rich progress bar (stderr) updated every step.
    Under data parallelism (`group`) rank 0 alone does these; its result is the cell's (another
    rank's result is its own view: no test metrics, not recorded)."""
    main = group.rank == 0
    run = build_run(config, shard=(group.rank, group.world))
    group.join(run)
    ckpt = Path(out_dir) / CHECKPOINT_NAME if out_dir is not None and main else None
    if ckpt is not None:
        remove_stale_temporaries(ckpt.parent)
    group.resume(run, ckpt if resume else None)
    status, error, device = "ok", None, run.runtime.device
    with progress_bar(progress and main, run) as on_step:
        while run.epoch < config.epochs:
            lr = current_lr(run.ctx.optimizer)  # the lr of the epoch's first step
            train_metrics = group.mean(run_epoch(run, on_step), device)
            record, evaluated = epoch_record(run, lr, train_metrics, evaluate_here=main)
            run.end_epoch(record)
            if main:
                error = divergence(record, evaluated)
                if error is not None:
                    status = "diverged"
                elif ckpt is not None:  # a diverged epoch is never checkpointed
                    atomic_torch_save(checkpoint_state(run), ckpt)
                if on_epoch is not None:
                    on_epoch(record)
            if group.stop(status != "ok", device):
                break
    if out_dir is not None and main:
        atomic_torch_save(run.ctx.model.state_dict(), Path(out_dir) / FINAL_WEIGHTS_NAME)
    return train_result(run, status, error, group.world)


def _decider(coins: ScheduleDraws | PolicyDraws, t: int) -> Callable[[torch.Tensor], bool]:
    """X_t from step t's own first-pass signal (a policy with `signal_lag: 0`)."""
    assert isinstance(coins, PolicyDraws)
    return lambda signal: coins.decide_now(t, signal)


def run_epoch(run: Run, on_step: Callable[[], None] | None = None) -> tuple[float, float]:
    """Train one epoch; returns (mean train loss, train error), read once at the end."""
    ctx, coins, accounting = run.ctx, run.coins, run.accounting
    ctx.reset_epoch_sums()
    ctx.model.train()
    first = run.epoch * run.steps_per_epoch
    t, seen = first, 0
    begin = time.perf_counter()
    for x, y in epoch_batches(run):
        if t - first >= run.steps_per_epoch:
            raise RuntimeError("train_batches yielded more batches than steps_per_epoch")
        x = to_memory_format(x, run.runtime)
        decided = coins.decide(t)  # the coin X_t; None: from this step's own signal (lag 0)
        run.timer.start()
        sa = train_step(ctx, x, y, _decider(coins, t) if decided is None else decided)
        run.timer.stop(sa, accounting)
        coins.observe(t, ctx.signal)
        seen += y.shape[0]
        t += 1
        if on_step is not None:
            on_step()
    steps = t - first
    loss_sum, correct = ctx.loss_sum.item(), ctx.correct.item()  # the one sync of the epoch
    coins.flush()
    accounting.train_time_s += time.perf_counter() - begin
    run.timer.flush(accounting)
    if steps != run.steps_per_epoch:
        raise RuntimeError(f"train_batches yielded {steps} batches, expected {run.steps_per_epoch}")
    accounting.steps += steps
    accounting.sa_steps += int(run.draws[first:t].sum())
    accounting.extra_passes += ctx.optimizer.take_extra_passes()
    return loss_sum / steps, 1.0 - correct / seen


def epoch_batches(run: Run):
    """This worker's training batches of the run's current epoch (augmented, mixed if set)."""
    config = run.config
    batches = train_batches(
        run.data,
        config.batch_size,
        config.augment,
        config.seed,
        run.epoch,
        shard=run.shard,
        pad_mode=config.pad_mode,
    )
    if config.mixup_alpha > 0:
        num_classes = run.data.num_classes
        batches = mixup_batches(batches, num_classes, config.mixup_alpha, config.seed, run.epoch)
    return batches


def epoch_record(
    run: Run, lr: float, train: tuple[float, float], evaluate_here: bool = True
) -> tuple[EpochRecord, bool]:
    """The record of the epoch just trained: its (loss, error) on train and, when evaluated here
    (every `eval_every`-th epoch and the last; not after a non-finite train loss: NaN weights
    tell nothing), on test (else NaN); its first step's lr; the run's cumulative steps, SA steps
    and training time. Also whether it was evaluated."""
    epoch = run.epoch + 1
    due = epoch % run.config.eval_every == 0 or epoch == run.config.epochs
    evaluated = evaluate_here and due and math.isfinite(train[0])
    test = (float("nan"), float("nan"))
    if evaluated:
        batches = test_batches(run.data, EVAL_BATCH_SIZE)
        test = evaluate(run.ctx.model, batches, run.runtime)
    record = EpochRecord(
        epoch=epoch,
        train_loss=train[0],
        train_error=train[1],
        test_loss=test[0],
        test_error=test[1],
        lr=lr,
        steps=run.accounting.steps,
        sa_steps=run.accounting.sa_steps,
        time_s=run.accounting.train_time_s,
    )
    return record, evaluated


def divergence(record: EpochRecord, evaluated: bool) -> str | None:
    """Why the epoch of `record` diverged (a non-finite train loss, or test loss where it was
    evaluated), or None."""
    test_ok = math.isfinite(record.test_loss) or not evaluated
    if math.isfinite(record.train_loss) and test_ok:
        return None
    return (
        f"diverged in epoch {record.epoch}: non-finite loss "
        f"(train {record.train_loss}, test {record.test_loss})"
    )


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def expected_coin_fraction(run: Run) -> float:
    """E[ΣX_t]/T: the discrete mean of p(t), with the warm-up coins at 0 under `warmup_sgd`."""
    probs = np.array(run.schedule.probabilities(run.total_steps), dtype=float)
    if run.config.warmup_sgd:
        probs[: min(run.config.warmup_epochs * run.steps_per_epoch, run.total_steps)] = 0.0
    return float(probs.mean()) if probs.size else 0.0


def train_result(run: Run, status: str, error: str | None, world_size: int = 1) -> TrainResult:
    """The run's TrainResult: its last epoch's metrics, accounting, coins and manifest."""
    last = run.records[-1] if run.records else None
    signals = run.coins.signals  # a closed-loop policy's ‖g_t‖², None for schedules
    accounting, nan = run.accounting, float("nan")
    return TrainResult(
        cell_id=run.config.cell_id(),
        status=status,
        error=error,
        steps=accounting.steps,
        sa_steps=accounting.sa_steps,
        expected_extra=expected_coin_fraction(run),
        closed_form_extra=float(run.schedule.closed_form_extra),
        train_time_s=accounting.train_time_s,
        sgd_step_s=accounting.mean_base_step(),
        sa_step_s=accounting.mean_sa_step(),
        train_loss=last.train_loss if last else nan,
        train_error=last.train_error if last else nan,
        test_loss=last.test_loss if last else nan,
        test_error=last.test_error if last else nan,
        epochs=list(run.records),
        draws=run.draws[: accounting.steps].copy(),
        world_size=world_size,
        skipped_steps=run.ctx.loss_scaling.skipped_steps,
        peak_memory_bytes=peak_memory_bytes(run.runtime.device),
        manifest=collect_manifest(
            run.runtime.device,
            run.runtime.precision,
            run.ctx.passes.compiled,
            run.runtime.deterministic,
        ),
        extra_passes=accounting.extra_passes,
        first_pass_s=accounting.mean_first_pass(),
        signals=None if signals is None else signals[: accounting.steps].copy(),
    )

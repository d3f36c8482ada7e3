"""The built pieces of one run (device, data, model, optimizer, lr schedule, coin draws) and one
training epoch over them. The coins X_t are precomputed from (schedule, seed, T), independent of
torch's RNG, and the batches are a pure function of (seed, epoch): that is what makes a resumed run
bit-identical. A closed-loop policy decides X_t during the epoch instead (`draws.py`), from
signals the step leaves on the device."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from rstsweep.core.config import CellConfig
from rstsweep.core.result import EpochRecord
from rstsweep.errors import RstError
from rstsweep.schedules import Policy, Schedule
from rstsweep.schedules import parse as parse_schedule
from rstsweep.trainers.augment import steps_per_epoch, train_batches
from rstsweep.trainers.batchnorm import disable_running_stats
from rstsweep.trainers.compiled import EAGER, compiled_passes
from rstsweep.trainers.data import DataBundle, load_data
from rstsweep.trainers.draws import PolicyDraws, ScheduleDraws, draw_source
from rstsweep.trainers.memory import prepare_device_memory
from rstsweep.trainers.mixup import mixup_batches
from rstsweep.trainers.models import build_model
from rstsweep.trainers.optim import build_lr_scheduler, build_optimizer
from rstsweep.trainers.runtime import Runtime, resolve_runtime, seed_everything, to_memory_format
from rstsweep.trainers.step import StepContext, train_step
from rstsweep.trainers.timing import Accounting, StepTimer


@dataclass
class Cell:
    """The built pieces of one run plus its progress (what a checkpoint captures)."""

    config: CellConfig
    runtime: Runtime
    data: DataBundle
    ctx: StepContext
    steps_per_epoch: int
    total_steps: int
    source: ScheduleDraws | PolicyDraws  # the coins X_t, step by step
    schedule: Schedule | Policy
    timer: StepTimer
    acc: Accounting = field(default_factory=Accounting)
    records: list[EpochRecord] = field(default_factory=list)
    epoch: int = 0  # completed epochs
    shard: tuple[int, int] = (0, 1)  # (rank, world_size): this worker's part of every batch

    @property
    def draws(self) -> np.ndarray:
        """X_0..X_{T-1} (a policy's are filled as the run decides them)."""
        return self.source.draws


def build_cell(config: CellConfig, data: DataBundle | None = None) -> Cell:
    """Device, seeds, data, model, optimizer, lr schedule and the precomputed coin draws.
    `data` (a DataBundle already on the device) replaces `load_data` (benchmarks, tests)."""
    runtime = resolve_runtime(config)
    prepare_device_memory(config.memory_fraction, runtime.device)
    seed_everything(config.seed)
    if data is None:
        data = load_data(
            config.dataset,
            data_dir=config.data_dir,
            device=runtime.device,
            train_subset=config.train_subset,
            test_subset=config.test_subset,
            seed=config.seed,
            label_noise=config.label_noise,
            image_size=config.image_size,
            loader_workers=config.loader_workers,
        )
    # Model init draws from torch's RNG seeded right here, so it does not depend on the data code.
    torch.manual_seed(config.seed)
    model = build_model(
        config.model,
        data.in_channels,
        data.num_classes,
        width=config.width,
        image_size=data.image_size,
    ).to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    spe = steps_per_epoch(int(data.train_labels.shape[0]), config.batch_size)
    if spe < 1:
        raise RstError(
            f"batch_size: {config.batch_size} is larger than the training set "
            f"({int(data.train_labels.shape[0])} samples)"
        )
    # named: ASAM's official variant scales weight tensors only (SamsungLabs/ASAM)
    optimizer = build_optimizer(model.named_parameters(), config)
    scheduler = build_lr_scheduler(optimizer, config, spe)
    schedule = parse_schedule(config.schedule)
    total = spe * config.epochs
    timer = StepTimer(runtime.device)
    optimizer.on_first_pass_end = timer.mark_first_pass  # first-pass time of SA steps
    warmup = min(config.warmup_epochs * spe, total) if config.warmup_sgd else 0
    source = draw_source(schedule, total, config.seed, runtime.device, warmup)
    ctx = StepContext(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        runtime=runtime,
        label_smoothing=config.label_smoothing,
        disable_running_stats=disable_running_stats,
        passes=compiled_passes() if runtime.compile else EAGER,
        wants_signal=source.wants_signal,
    )
    return Cell(
        config=config,
        runtime=runtime,
        data=data,
        ctx=ctx,
        steps_per_epoch=spe,
        total_steps=total,
        source=source,
        schedule=schedule,
        timer=timer,
    )


def run_epoch(cell: Cell, on_step: Callable[[], None] | None = None) -> tuple[float, float]:
    """Train one epoch; returns (mean train loss, train error), read once at the end."""
    cfg, ctx, acc = cell.config, cell.ctx, cell.acc
    timer = cell.timer
    ctx.reset_epoch_sums()
    ctx.model.train()
    source = cell.source
    first = cell.epoch * cell.steps_per_epoch
    t = first
    seen = 0
    begin = time.perf_counter()
    batches = train_batches(
        cell.data,
        cfg.batch_size,
        cfg.augment,
        cfg.seed,
        cell.epoch,
        shard=cell.shard,
        pad_mode=cfg.pad_mode,
    )
    if cfg.mixup_alpha > 0:
        batches = mixup_batches(
            batches, cell.data.num_classes, cfg.mixup_alpha, cfg.seed, cell.epoch
        )
    for x, y in batches:
        if t - first >= cell.steps_per_epoch:
            raise RuntimeError("train_batches yielded more batches than steps_per_epoch")
        x = to_memory_format(x, cell.runtime)
        sa = source.decide(t)
        timer.start()
        train_step(ctx, x, y, sa)
        timer.stop(sa, acc)
        source.observe(t, ctx.signal)
        seen += y.shape[0]
        t += 1
        if on_step is not None:
            on_step()
    steps = t - first
    loss_sum, correct = ctx.loss_sum.item(), ctx.correct.item()  # the one sync of the epoch
    source.flush()
    acc.train_time_s += time.perf_counter() - begin
    timer.flush(acc)
    if steps != cell.steps_per_epoch:
        raise RuntimeError(
            f"train_batches yielded {steps} batches, expected {cell.steps_per_epoch}"
        )
    acc.steps += steps
    acc.sa_steps += int(cell.draws[first:t].sum())
    acc.extra_passes += ctx.optimizer.take_extra_passes()
    return loss_sum / steps, 1.0 - correct / seen


def expected_coin_fraction(cell: Cell) -> float:
    """E[ΣX_t]/T: the discrete mean of p(t), with the warm-up coins at 0 under `warmup_sgd`."""
    probs = np.array(cell.schedule.probabilities(cell.total_steps), dtype=float)
    if cell.config.warmup_sgd:
        probs[: min(cell.config.warmup_epochs * cell.steps_per_epoch, cell.total_steps)] = 0.0
    return float(probs.mean()) if probs.size else 0.0


def epoch_record(
    cell: Cell, lr: float, train: tuple[float, float], test: tuple[float, float]
) -> EpochRecord:
    """The record of the epoch just trained: its (loss, error) on train and test, its first step's
    lr, and the cell's cumulative steps, SA steps and training time."""
    return EpochRecord(
        epoch=cell.epoch + 1,
        train_loss=train[0],
        train_error=train[1],
        test_loss=test[0],
        test_error=test[1],
        lr=lr,
        steps=cell.acc.steps,
        sa_steps=cell.acc.sa_steps,
        time_s=cell.acc.train_time_s,
    )


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

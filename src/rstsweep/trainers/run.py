"""A built run: its pieces (device, data, model, optimizer, lr schedule, coin draws) and its
progress (`Run`), built by `build_run` and restored from a checkpoint by `Run.restore`; the epoch
loop that trains it is `loop.py`. The coins X_t are precomputed from (schedule, seed, T),
independent of torch's RNG, and the batches are a pure function of (seed, epoch): that is what
makes a resumed run bit-identical. A closed-loop policy decides X_t during the epoch instead
(`draws.py`), from signals the step leaves on the device."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from rstsweep.core.config import CellConfig
from rstsweep.core.result import EpochRecord
from rstsweep.errors import RstError
from rstsweep.schedules import Policy, Schedule
from rstsweep.schedules import parse as parse_schedule
from rstsweep.trainers.augment import steps_per_epoch
from rstsweep.trainers.batchnorm import disable_running_stats
from rstsweep.trainers.compiled import EAGER, compiled_passes
from rstsweep.trainers.data import DataBundle, load_data
from rstsweep.trainers.draws import PolicyDraws, ScheduleDraws, draw_source
from rstsweep.trainers.memory import prepare_device_memory
from rstsweep.trainers.models import build_model
from rstsweep.trainers.optim import build_lr_scheduler, build_optimizer
from rstsweep.trainers.runtime import Runtime, resolve_runtime, seed_everything
from rstsweep.trainers.step import StepContext
from rstsweep.trainers.timing import Accounting, StepTimer


@dataclass
class Run:
    """The built pieces of one run plus its progress (what a checkpoint captures)."""

    config: CellConfig
    runtime: Runtime
    data: DataBundle
    ctx: StepContext
    steps_per_epoch: int
    total_steps: int
    coins: ScheduleDraws | PolicyDraws  # the coins X_t, step by step
    schedule: Schedule | Policy
    timer: StepTimer
    accounting: Accounting = field(default_factory=Accounting)
    records: list[EpochRecord] = field(default_factory=list)
    epoch: int = 0  # completed epochs
    shard: tuple[int, int] = (0, 1)  # (rank, world_size): this worker's part of every batch

    @property
    def draws(self) -> np.ndarray:
        """X_0..X_{T-1} (a policy's are filled as the run decides them)."""
        return self.coins.draws

    def end_epoch(self, record: EpochRecord) -> None:
        """The epoch of `record` is trained (and evaluated if due)."""
        self.records.append(record)
        self.epoch += 1

    def restore(self, state: dict[str, object]) -> None:
        """Put this freshly built run (same config) at the position a checkpoint's `state`
        captured (`checkpoint.checkpoint_state`); checked against the config by the caller."""
        self.ctx.model.load_state_dict(state["model"])
        self.ctx.optimizer.load_state_dict(state["optimizer"])
        self.ctx.scheduler.load_state_dict(state["scheduler"])
        self.accounting = Accounting(**state["accounting"])
        self.records = [EpochRecord(**r) for r in state["records"]]
        self.epoch = int(state["epoch"])
        signals = state.get("signals")
        self.coins.restore(self.accounting.steps, None if signals is None else signals.numpy())
        if self.ctx.scaling is not None and state.get("scaling"):
            self.ctx.scaling.load_state_dict(state["scaling"])


def build_run(
    config: CellConfig, data: DataBundle | None = None, shard: tuple[int, int] = (0, 1)
) -> Run:
    """Device, seeds, data, model, optimizer, lr schedule and the precomputed coin draws.
    `data` (a DataBundle already on the device) replaces `load_data` (benchmarks, tests);
    `shard` = (rank, world_size): the part of every batch this data-parallel worker trains on."""
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
        dataset=config.dataset,
    ).to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    per_epoch = steps_per_epoch(int(data.train_labels.shape[0]), config.batch_size)
    if per_epoch < 1:
        raise RstError(
            f"batch_size: {config.batch_size} is larger than the training set "
            f"({int(data.train_labels.shape[0])} samples)"
        )
    # named: ASAM's official variant scales weight tensors only (SamsungLabs/ASAM)
    optimizer = build_optimizer(model.named_parameters(), config)
    scheduler = build_lr_scheduler(optimizer, config, per_epoch)
    schedule = parse_schedule(config.schedule)
    total = per_epoch * config.epochs
    timer = StepTimer(runtime.device)
    optimizer.on_first_pass_end = timer.mark_first_pass  # first-pass time of SA steps
    warmup = min(config.warmup_epochs * per_epoch, total) if config.warmup_sgd else 0
    coins = draw_source(schedule, total, config.seed, runtime.device, warmup, config.signal_lag)
    ctx = StepContext(
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        runtime=runtime,
        label_smoothing=config.label_smoothing,
        disable_running_stats=disable_running_stats,
        passes=compiled_passes() if runtime.compile else EAGER,
        wants_signal=coins.wants_signal,
    )
    return Run(
        config=config,
        runtime=runtime,
        data=data,
        ctx=ctx,
        steps_per_epoch=per_epoch,
        total_steps=total,
        coins=coins,
        schedule=schedule,
        timer=timer,
        shard=shard,
    )

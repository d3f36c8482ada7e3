"""A stand-in trainer (no torch) for the driver's tests and benchmarks: the one home of the
stand-in that `tests/test_driver_fake.py`, `benchmarks/bench_sweeper.py` and
`benchmarks/bench_paper_scale.py` run through the real driver.

It honours the trainer contract the driver relies on (`train(config, out_dir, resume, on_epoch)`;
`out_dir/checkpoint.pt` is on disk, written atomically, when `on_epoch` is called; `resume=True`
continues after the checkpointed epoch) and paces itself to `epoch_s` seconds per epoch against
the wall clock (sleeping, or spinning the CPU with `busy`), so the Ray plumbing is exercised
without torch. The checkpoint records which process ran each epoch (`ran`), so a test can tell a
resumed attempt from a restart; the epoch records are a function of the epoch alone, so the
checkpoint stays small for 1,200-epoch cells.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rstsweep.core.names import CHECKPOINT_NAME
from rstsweep.core.result import EpochRecord, TrainResult

if TYPE_CHECKING:
    from rstsweep.core.config import CellConfig

STEPS_PER_EPOCH = 4


def standin_train(
    config: CellConfig,
    out_dir: str | os.PathLike[str],
    resume: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    *,
    epoch_s: float = 0.3,
    busy: bool = False,
) -> TrainResult:
    """Run `config.epochs` epochs of `epoch_s` seconds each, checkpointing after every epoch."""
    out = Path(out_dir)
    ckpt = out / CHECKPOINT_NAME
    state: dict[str, object] = {"epoch": 0, "ran": []}
    if resume and ckpt.exists():
        state = json.loads(ckpt.read_text())
    t0 = time.perf_counter()
    first = state["epoch"]
    while state["epoch"] < config.epochs:
        # pace against the start, so checkpoint writes do not stretch the cell
        _wait_until(t0 + (state["epoch"] + 1 - first) * epoch_s, busy)
        state["epoch"] += 1
        state["ran"].append([state["epoch"], os.getpid()])
        tmp = out / f".tmp-{CHECKPOINT_NAME}"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, ckpt)  # atomic, like the real trainer
        if on_epoch is not None:
            on_epoch(epoch_record(state["epoch"], epoch_s))
    records = [epoch_record(e, epoch_s) for e in range(1, config.epochs + 1)]
    return _result(config, records, time.perf_counter() - t0)


def epoch_record(epoch: int, epoch_s: float) -> EpochRecord:
    """The (made-up, deterministic) metrics of one epoch."""
    steps = epoch * STEPS_PER_EPOCH
    return EpochRecord(
        epoch=epoch,
        train_loss=1.0 / epoch,
        train_error=0.5 / epoch,
        test_loss=1.1 / epoch,
        test_error=0.6 / epoch,
        lr=0.1,
        steps=steps,
        sa_steps=steps // 2,
        time_s=epoch * epoch_s,
    )


def _wait_until(deadline: float, busy: bool) -> None:
    if not busy:
        time.sleep(max(0.0, deadline - time.perf_counter()))
        return
    x = 0
    while time.perf_counter() < deadline:
        for i in range(5000):
            x += i * i


def _result(config: CellConfig, records: list[EpochRecord], compute_s: float) -> TrainResult:
    last = records[-1]
    draws = np.arange(last.steps) % 2 == 0
    return TrainResult(
        cell_id=config.cell_id(),
        status="ok",
        error=None,
        steps=last.steps,
        sa_steps=int(draws.sum()),
        expected_extra=0.5,
        closed_form_extra=0.5,
        train_time_s=compute_s,
        sgd_step_s=0.01,
        sa_step_s=0.02,
        train_loss=last.train_loss,
        train_error=last.train_error,
        test_loss=last.test_loss,
        test_error=last.test_error,
        epochs=records,
        draws=draws,
    )

"""Scaffolding shared by the tests (no torch): synthetic cells and TrainResults (the conftest
fixtures `make_cell` and `make_result` hand these out; scripts that tests run in a subprocess import
them from here), the tiny CPU training config, the CLI invoked in-process, and a training run
crashed right after an epoch's checkpoint (for the resume tests)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from rstsweep.core.config import CellConfig
from rstsweep.core.result import EpochRecord, TrainResult
from rstsweep.schedules import parse
from rstsweep.sweeps.cell import Cell


def make_cell(schedule: str = "constant(0.5)", seed: int = 0, group: str = "constant") -> Cell:
    """A cell of sweep `constant` (2 epochs, 512 training images, batch 64)."""
    config = CellConfig(schedule=schedule, seed=seed, epochs=2, train_subset=512, batch_size=64)
    x = parse(schedule).closed_form_extra
    return Cell("constant", group, f"s={schedule}", x, config, config.cell_id())


def make_result(cell: Cell, steps: int = 16, seed: int = 0, test_error: float = 0.2) -> TrainResult:
    """A TrainResult of two epochs whose draws come from the cell's own schedule."""
    schedule = parse(cell.config.schedule)
    draws = schedule.draws(steps, seed)
    half = steps // 2
    epochs = [
        EpochRecord(1, 1.0, 0.4, 1.1, 0.45, 0.1, half, int(draws[:half].sum()), 1.5),
        EpochRecord(2, 0.5, 0.2, 0.6, test_error, 0.0, steps, int(draws.sum()), 3.0),
    ]
    return TrainResult(
        cell_id=cell.cell_id,
        status="ok",
        error=None,
        steps=steps,
        sa_steps=int(draws.sum()),
        expected_extra=schedule.expected_extra(steps),
        closed_form_extra=schedule.closed_form_extra,
        train_time_s=3.0,
        sgd_step_s=0.1,
        sa_step_s=0.2,
        train_loss=0.5,
        train_error=0.2,
        test_loss=0.6,
        test_error=test_error,
        epochs=epochs,
        draws=draws,
    )


def tiny_fields(**overrides: Any) -> dict[str, Any]:
    """The fields of a tiny CPU cell (fastcnn of width 4 on 256 Fashion-MNIST images, one epoch
    of 4 steps, tested on 128), `overrides` on top: a dict, for `--set` options or a CellConfig."""
    tiny = dict(
        model="fastcnn", width=4, dataset="fashion-mnist", train_subset=256, test_subset=128,
        batch_size=64, epochs=1, device="cpu", threads=1,
    )  # fmt: skip
    return {**tiny, **overrides}


def tiny_config(**overrides: Any) -> CellConfig:
    """A tiny CPU cell that trains in about a second (see `tiny_fields`)."""
    return CellConfig(**tiny_fields(**overrides))


def invoke_cli(*args: object) -> Result:
    """`rstsweep ARGS` in-process through typer's CliRunner (the console script's error handling):
    the result has exit_code, stdout and stderr separately, and output (both, interleaved)."""
    from rstsweep.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


class Crash(Exception):
    """Raised from `on_epoch`: the run dies right after an epoch's checkpoint is written."""


def crash_after_epoch(train: Callable[..., object], config: object, out_dir: Path, epoch: int = 1):
    """Run `train(config, out_dir=out_dir)` until `epoch` is checkpointed, then crash it (the test
    fails if the run ends without crashing); `train(..., resume=True)` then picks it up."""

    def crash(record) -> None:
        if record.epoch == epoch:
            raise Crash

    with pytest.raises(Crash):
        train(config, out_dir=out_dir, on_epoch=crash)

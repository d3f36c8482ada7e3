"""Synthetic cells and TrainResults for tests (no torch): the conftest fixtures `make_cell` and
`make_result` hand these out; scripts that tests run in a subprocess import them from here."""

from __future__ import annotations

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

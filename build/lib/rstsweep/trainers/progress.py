"""The per-step progress bar of `rstsweep train` (rich, on stderr): a counter and rich's own
rate-limited refresh, no device work."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rstsweep.trainers.cell import Cell


@contextlib.contextmanager
def progress_bar(enabled: bool, cell: Cell) -> Iterator[Callable[[], None] | None]:
    if not enabled:
        yield None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("SA {task.fields[sa]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    draws = cell.draws  # a policy's coins are filled step by step, before on_step is called
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        done = cell.epoch * cell.steps_per_epoch
        sa = int(cell.draws[:done].sum())
        task = bar.add_task(cell.config.cell_id(), total=cell.total_steps, completed=done, sa=sa)
        position = [done, sa]

        def on_step() -> None:
            # Cheap: a counter and rich's own rate-limited refresh thread; no device work.
            position[1] += bool(draws[position[0]])
            position[0] += 1
            bar.update(task, completed=position[0], sa=position[1])

        yield on_step

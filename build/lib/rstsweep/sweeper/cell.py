"""`Cell`: one unit of work of a sweep (a fully resolved CellConfig and where it sits), and the
grouping helper the plan, status and driver share. Plain data: no torch, no ray."""

from __future__ import annotations

from dataclasses import dataclass

from rstsweep.core.config import CellConfig


@dataclass(frozen=True)
class Cell:
    """One unit of work: a fully resolved CellConfig and where it sits in its sweep.

    `figure` / `table` are the sweep's `figure:` / `table:` keys of sweeps.yaml (what the cell
    feeds in the paper, e.g. "Fig. 1", "Table 5"); `group_index` is the paper's group number of a
    group declared with a schedule helper (`{piecewise_group: 2, ...}` -> 2), the Fig. 2 panels of
    Zhao et al.; None where the sweep or group declares none.
    """

    sweep: str
    group: str
    label: str
    x: float | None
    config: CellConfig
    cell_id: str
    figure: str | None = None
    table: str | None = None
    group_index: int | None = None


def cells_by_group(cells: list[Cell]) -> dict[str, list[Cell]]:
    """Cells grouped by group name, in first-seen order."""
    out: dict[str, list[Cell]] = {}
    for cell in cells:
        out.setdefault(cell.group, []).append(cell)
    return out

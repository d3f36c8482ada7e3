"""Checkpoint state of a cell: what `checkpoint.pt` holds (model, optimizer incl. SAM state, lr
scheduler, position, accounting, epoch records, RNG states) and how a fresh cell of the same config
is put back at that position."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from rstsweep.core.result import EpochRecord
from rstsweep.errors import RstError
from rstsweep.trainers.cell import Cell
from rstsweep.trainers.checkpoint import (
    FORMAT_VERSION,
    capture_rng_state,
    load_checkpoint,
    restore_rng_state,
)
from rstsweep.trainers.timing import Accounting


def checkpoint_state(cell: Cell) -> dict[str, Any]:
    signals = cell.source.signals
    return {
        "format": FORMAT_VERSION,
        "cell_id": cell.config.cell_id(),
        "total_steps": cell.total_steps,
        "epoch": cell.epoch,
        "model": cell.ctx.model.state_dict(),
        "optimizer": cell.ctx.optimizer.state_dict(),
        "scheduler": cell.ctx.scheduler.state_dict(),
        "accounting": dataclasses.asdict(cell.acc),
        "records": [dataclasses.asdict(r) for r in cell.records],
        "rng": capture_rng_state(),
        "scaling": cell.ctx.scaling.state_dict() if cell.ctx.scaling else None,
        # a policy's controller state is rebuilt from these (see draws.PolicyDraws.restore)
        # (a tensor: checkpoints are loaded with weights_only=True, which refuses numpy arrays)
        "signals": None if signals is None else torch.from_numpy(signals.copy()),
    }


def restore_cell(cell: Cell, path: Path) -> None:
    """Load a checkpoint into a freshly built cell (same config) and continue from its epoch."""
    try:
        # On the CPU: load_state_dict moves every tensor to its parameter; RNG states stay on CPU.
        state = load_checkpoint(path, map_location="cpu")
    except Exception as exc:
        raise RstError(f"resume: cannot read checkpoint {path}: {exc}") from None
    if state.get("format") != FORMAT_VERSION:
        raise RstError(f"resume: {path} has checkpoint format {state.get('format')}")
    if state["cell_id"] != cell.config.cell_id() or state["total_steps"] != cell.total_steps:
        raise RstError(
            f"resume: {path} belongs to cell {state['cell_id']}, not {cell.config.cell_id()} "
            "(the config changed); use a new --out directory or drop --resume"
        )
    cell.ctx.model.load_state_dict(state["model"])
    cell.ctx.optimizer.load_state_dict(state["optimizer"])
    cell.ctx.scheduler.load_state_dict(state["scheduler"])
    cell.acc = Accounting(**state["accounting"])
    cell.records = [EpochRecord(**r) for r in state["records"]]
    cell.epoch = int(state["epoch"])
    signals = state.get("signals")
    cell.source.restore(cell.acc.steps, None if signals is None else signals.numpy())
    restore_rng_state(state["rng"])
    if cell.ctx.scaling is not None and state.get("scaling"):
        cell.ctx.scaling.load_state_dict(state["scaling"])

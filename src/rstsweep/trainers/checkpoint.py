"""Epoch-boundary checkpoints of one training run: what `checkpoint.pt` holds, atomic writes, and
reading one back into a fresh run of the same config (RNG states included).

A checkpoint is one `torch.save`d dict (model, optimizer incl. SAM state, lr scheduler, position,
accounting, epoch records, RNG states, fp16 loss scale, a policy's signals: `checkpoint_state`).
It is written to a temporary file in the same directory, fsync'ed and `os.replace`d into place,
so a reader (or a resumed run) sees either the previous checkpoint or the new one, never half a
file, even if the writer is SIGKILLed mid-write. Everything stored is plain data (tensors,
numbers, strings, lists, dicts), so loading uses `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import numpy as np
import torch

from rstsweep.core.atomic import atomic_write
from rstsweep.core.atomic import remove_stale_temporaries as _remove_stale
from rstsweep.core.names import CHECKPOINT_NAME, FINAL_WEIGHTS_NAME
from rstsweep.errors import RstError
from rstsweep.trainers.run import Run

FORMAT_VERSION = 1


def atomic_torch_save(obj: object, path: Path) -> None:
    """`torch.save(obj, path)` via the one atomic-write helper (tmp file, fsync, rename)."""
    atomic_write(path, lambda handle: torch.save(obj, handle))


def remove_stale_temporaries(directory: Path) -> None:
    """Delete `.tmp-*` files a killed writer left in `directory` (never the real files)."""
    for name in (CHECKPOINT_NAME, FINAL_WEIGHTS_NAME):
        _remove_stale(directory, name)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, object]:
    """Read a checkpoint written by `atomic_torch_save` (plain data only: weights_only=True)."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def capture_rng_state() -> dict[str, object]:
    """torch (CPU + every CUDA device), numpy-global and python `random` states as plain data."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, object] = {
        "torch": torch.get_rng_state(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, object]) -> None:
    """Inverse of `capture_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _to_lists(value: object) -> object:
    # python's random state is nested tuples; lists survive any serializer unchanged.
    if isinstance(value, tuple):
        return [_to_lists(v) for v in value]
    return value


def _to_tuples(value: object) -> object:
    if isinstance(value, list):
        return tuple(_to_tuples(v) for v in value)
    return value


def checkpoint_state(run: Run) -> dict[str, object]:
    """Everything a resumed run needs to continue bit-identically, as plain data."""
    signals = run.coins.signals
    return {
        "format": FORMAT_VERSION,
        "cell_id": run.config.cell_id(),
        "total_steps": run.total_steps,
        "epoch": run.epoch,
        "model": run.ctx.model.state_dict(),
        "optimizer": run.ctx.optimizer.state_dict(),
        "scheduler": run.ctx.scheduler.state_dict(),
        "accounting": dataclasses.asdict(run.accounting),
        "records": [dataclasses.asdict(r) for r in run.records],
        "rng": capture_rng_state(),
        "scaling": run.ctx.scaling.state_dict() if run.ctx.scaling else None,
        # a policy's controller state is rebuilt from these (see draws.PolicyDraws.restore)
        # (a tensor: checkpoints are loaded with weights_only=True, which refuses numpy arrays)
        "signals": None if signals is None else torch.from_numpy(signals.copy()),
    }


def restore_run(run: Run, path: Path) -> None:
    """Load a checkpoint into a freshly built run (same config) and continue from its epoch."""
    try:
        # On the CPU: load_state_dict moves every tensor to its parameter; RNG states stay on CPU.
        state = load_checkpoint(path, map_location="cpu")
    except Exception as exc:
        raise RstError(f"resume: cannot read checkpoint {path}: {exc}") from None
    if state.get("format") != FORMAT_VERSION:
        raise RstError(f"resume: {path} has checkpoint format {state.get('format')}")
    if state["cell_id"] != run.config.cell_id() or state["total_steps"] != run.total_steps:
        raise RstError(
            f"resume: {path} belongs to cell {state['cell_id']}, not {run.config.cell_id()} "
            "(the config changed); use a new --out directory or drop --resume"
        )
    run.restore(state)
    restore_rng_state(state["rng"])

"""Epoch-boundary checkpoints of one training run: atomic writes, RNG capture and restore.

A checkpoint is one `torch.save`d dict (model, optimizer incl. SAM state, lr scheduler, position,
accounting, epoch records, RNG states). It is written to a temporary file in the same directory,
fsync'ed and `os.replace`d into place, so a reader (or a resumed run) sees either the previous
checkpoint or the new one, never half a file, even if the writer is SIGKILLed mid-write.
Everything stored is plain data (tensors, numbers, strings, lists, dicts), so loading uses
`torch.load(weights_only=True)`.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rstsweep.core.atomic import atomic_write
from rstsweep.core.atomic import remove_stale_temporaries as _remove_stale
from rstsweep.core.names import CHECKPOINT_NAME, FINAL_WEIGHTS_NAME

FORMAT_VERSION = 1


def atomic_torch_save(obj: Any, path: Path) -> None:
    """`torch.save(obj, path)` via the one atomic-write helper (tmp file, fsync, rename)."""
    atomic_write(path, lambda handle: torch.save(obj, handle))


def remove_stale_temporaries(directory: Path) -> None:
    """Delete `.tmp-*` files a killed writer left in `directory` (never the real files)."""
    for name in (CHECKPOINT_NAME, FINAL_WEIGHTS_NAME):
        _remove_stale(directory, name)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `atomic_torch_save` (plain data only: weights_only=True)."""
    return torch.load(Path(path), map_location=map_location, weights_only=True)


def capture_rng_state() -> dict[str, Any]:
    """torch (CPU + every CUDA device), numpy-global and python `random` states as plain data."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of `capture_rng_state`."""
    torch.set_rng_state(state["torch"].cpu())
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _to_lists(value: Any) -> Any:
    # python's random state is nested tuples; lists survive any serializer unchanged.
    if isinstance(value, tuple):
        return [_to_lists(v) for v in value]
    return value


def _to_tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_to_tuples(v) for v in value)
    return value

"""The one PyTorch trainer every sweep cell runs: SAM-family optimizers, models, data, RST loop.

Attributes are imported lazily so that `from rstsweep.trainers import CellConfig` does not pay for
torch; no ray here.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "CellConfig": "rstsweep.trainers.config",
    "TrainResult": "rstsweep.trainers.result",
    "EpochRecord": "rstsweep.trainers.result",
    "SAM": "rstsweep.trainers.sam",
    "GSAM": "rstsweep.trainers.sam",
    "LookSAM": "rstsweep.trainers.sam",
    "disable_running_stats": "rstsweep.trainers.sam",
    "build_optimizer": "rstsweep.trainers.optim",
    "build_lr_scheduler": "rstsweep.trainers.optim",
    "build_model": "rstsweep.trainers.models",
    "load_data": "rstsweep.trainers.data",
    "train": "rstsweep.trainers.loop",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)

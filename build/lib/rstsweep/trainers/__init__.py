"""The one PyTorch trainer every sweep cell runs: SAM-family optimizers, models, data, RST loop.

Torch, never ray. The torch-free contracts it trains against (CellConfig, TrainResult, the
catalogue, the algorithm registry) live in `rstsweep.core`. The names below are imported lazily
(on first use), so the torch-only modules (models, sam, variants, step, compiled, precision,
memory, probe) import without pydantic or numpy: the GPU benchmark runs on a bare torch install.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ESAM": "variants",
    "GSAM": "variants",
    "LookSAM": "variants",
    "SAM": "sam",
    "build_lr_scheduler": "optim",
    "build_model": "models",
    "build_optimizer": "optim",
    "disable_running_stats": "sam",
    "load_data": "data",
    "train": "loop",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)

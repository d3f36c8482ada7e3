"""A TrainResult as a JSON-safe summary dict (what `rstsweep train` prints, `cli.train`)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from rstsweep.core.result import TrainResult


def result_summary(result: TrainResult) -> dict[str, object]:
    """The TrainResult's scalar fields plus the coin fraction `sa_fraction` (ΣX_t/T), its value
    over each third of the steps `sa_fraction_by_third` (how a schedule or policy spends over
    training) and `realized_extra` (extra pass units run per step), JSON-safe (non-finite floats →
    None)."""
    summary = {
        f.name: getattr(result, f.name)
        for f in dataclasses.fields(result)
        if f.name not in ("epochs", "draws", "signals")
    }
    summary["sa_fraction"] = result.sa_fraction
    thirds = np.array_split(np.asarray(result.draws, dtype=float), 3)
    summary["sa_fraction_by_third"] = [float(p.mean()) if p.size else None for p in thirds]
    summary["realized_extra"] = result.realized_extra
    return {k: _json_safe(v) for k, v in summary.items()}


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

"""Row builders of the result store: a cell and its TrainResult -> `trials`, `epochs`, `draws`,
`cells` and `failures` rows, and the draws bit-packing. The one place that maps results to rows
(the store, the Ray trial payload and the synthetic test stores all use it). No torch, no ray.
"""

from __future__ import annotations

import functools
import json
import platform
import uuid
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np

from rstsweep.core.result import MANIFEST_KEYS
from rstsweep.store.files import utc_now
from rstsweep.store.schema import TABLES


class CellLike(Protocol):
    """What the store needs of a cell (`rstsweep.sweeper.spec.Cell` satisfies it)."""

    sweep: str
    group: str
    label: str
    x: float | None
    config: Any  # rstsweep.core.config.CellConfig
    cell_id: str


@functools.cache  # metadata lookups cost ~1 ms each; versions do not change within a process
def package_versions() -> dict[str, str | None]:
    """Versions of the packages that shape a result (from metadata: importing torch/ray is slow).
    Cached: treat the returned dict as read-only."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("rstsweep", "torch", "torchvision", "numpy", "ray"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def trial_row(
    cell: CellLike, result: Any, profile: str | None, attempt_id: str | None = None
) -> dict[str, Any]:
    """One `trials` row from a cell and its `TrainResult` (schedule family/params via `parse`)."""
    from rstsweep.schedules import parse

    config = cell.config
    schedule = parse(config.schedule)
    return {
        "cell_id": cell.cell_id,
        "attempt_id": attempt_id or uuid.uuid4().hex,
        "sweep": cell.sweep,
        "group": cell.group,
        "label": cell.label,
        "x": _opt_float(cell.x),
        "profile": profile,
        "family": schedule.family,
        "schedule": schedule.spec,
        "param_a": _opt_float(schedule.param_a),
        "param_b": _opt_float(schedule.param_b),
        "algorithm": config.algorithm,
        "base_optimizer": config.optimizer,
        "model": config.model,
        "dataset": config.dataset,
        "augment": config.augment,
        "seed": config.seed,
        "epochs": config.epochs,
        "rho": config.rho,
        "alpha": config.alpha,
        "label_noise": config.label_noise,
        "train_subset": config.train_subset,
        "batch_size": config.batch_size,
        "world_size": int(getattr(result, "world_size", 1)),
        "steps": result.steps,
        "sa_steps": result.sa_steps,
        "expected_extra": result.expected_extra,
        "closed_form_extra": result.closed_form_extra,
        "realized_extra": result.realized_extra,
        "sa_fraction": result.sa_fraction,
        "first_pass_s": _opt_float(getattr(result, "first_pass_s", None)),
        "train_time_s": result.train_time_s,
        "sgd_step_s": _opt_float(result.sgd_step_s),
        "sa_step_s": _opt_float(result.sa_step_s),
        "train_loss": result.train_loss,
        "train_error": result.train_error,
        "test_loss": result.test_loss,
        "test_error": result.test_error,
        "status": result.status,
        "error": result.error,
        "config_json": json.dumps(config.model_dump(mode="json"), sort_keys=True),
        "versions": json.dumps(package_versions(), sort_keys=True),
        "finished_at": utc_now(),
        "skipped_steps": int(getattr(result, "skipped_steps", 0) or 0),
        "peak_memory_bytes": getattr(result, "peak_memory_bytes", None),
        **manifest_columns(getattr(result, "manifest", None) or {}),
    }


def manifest_columns(manifest: dict[str, Any]) -> dict[str, Any]:
    """The manifest's values under their trial-row columns (null where a key is missing)."""
    return {name: manifest.get(name) for name in MANIFEST_KEYS}


def epoch_rows(cell_id: str, attempt_id: str, result: Any) -> list[dict[str, Any]]:
    """The `epochs` rows of a result (one per EpochRecord)."""
    rows = []
    for rec in result.epochs:
        row = {name: getattr(rec, name) for name in TABLES["epochs"].names if hasattr(rec, name)}
        rows.append({**row, "cell_id": cell_id, "attempt_id": attempt_id})
    return rows


def pack_draws(draws: np.ndarray) -> bytes:
    """X_0..X_{T-1} (bool) -> numpy.packbits bytes (big-endian bit order)."""
    return np.packbits(np.asarray(draws, dtype=bool)).tobytes()


def unpack_draws(bits: bytes, steps: int) -> np.ndarray:
    """Inverse of `pack_draws`: the first `steps` bits as a bool array."""
    packed = np.frombuffer(bits, dtype=np.uint8)
    return np.unpackbits(packed, count=int(steps)).astype(bool)


def pack_signal(signal: np.ndarray | None) -> bytes | None:
    """A policy's per-step signal ‖g_t‖² -> little-endian float32 bytes (None stays None)."""
    return None if signal is None else np.asarray(signal, dtype="<f4").tobytes()


def unpack_signal(data: bytes | None) -> np.ndarray | None:
    """Inverse of `pack_signal`."""
    return None if data is None else np.frombuffer(data, dtype="<f4").astype(np.float32)


def draws_row(
    cell_id: str, attempt_id: str, draws: np.ndarray, signal: np.ndarray | None = None
) -> dict[str, Any]:
    """The `draws` row of a cell's coin draws X_0..X_{T-1} (and a policy's signal)."""
    draws = np.asarray(draws, dtype=bool)
    if signal is not None and np.size(signal) != draws.size:
        raise ValueError(f"signal has {np.size(signal)} values for {draws.size} draws")
    return {
        "cell_id": cell_id,
        "attempt_id": attempt_id,
        "steps": int(draws.size),
        "bits": pack_draws(draws),
        "signal": pack_signal(signal),
    }


def cell_rows(cells: Iterable[CellLike], profile: str | None) -> list[dict[str, Any]]:
    """`cells` rows: sweep membership of each cell."""
    return [
        {
            "sweep": c.sweep,
            "group": c.group,
            "label": c.label,
            "x": _opt_float(c.x),
            "cell_id": c.cell_id,
            "profile": profile,
            # optional: cells built before these attributes existed have none
            "figure": getattr(c, "figure", None),
            "table": getattr(c, "table", None),
            "group_index": getattr(c, "group_index", None),
        }
        for c in cells
    ]


def failure_row(cell: CellLike, error: str) -> dict[str, Any]:
    """A `failures` row: a crashed attempt of `cell`."""
    return {
        "cell_id": cell.cell_id,
        "sweep": cell.sweep,
        "group": cell.group,
        "error": error,
        "failed_at": utc_now(),
    }

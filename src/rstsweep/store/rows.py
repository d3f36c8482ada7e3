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
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import pandas as pd

from rstsweep.core.passes import ATOM_COLUMNS, StepAtoms
from rstsweep.core.result import MANIFEST_KEYS, TrainResult
from rstsweep.schedules import parse
from rstsweep.store.files import utc_now
from rstsweep.store.schema import TABLES
from rstsweep.sweeps.cell import Cell


@functools.cache  # metadata lookups cost ~1 ms each; versions do not change within a process
def package_versions() -> dict[str, str | None]:
    """Versions of the packages that shape a result (from metadata: importing torch/ray is slow).
    Cached: treat the returned dict as read-only."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("rstsweep", "torch", "torchvision", "numpy", "ray"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def trial_row(
    cell: Cell, result: TrainResult, profile: str | None, attempt_id: str | None = None
) -> dict[str, object]:
    """One `trials` row from a cell and its `TrainResult` (schedule family/params via `parse`)."""
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
        "world_size": int(result.world_size),
        "steps": result.steps,
        "sa_steps": result.sa_steps,
        "expected_extra": result.expected_extra,
        "closed_form_extra": result.closed_form_extra,
        "realized_extra": result.realized_extra,
        "extra_passes_model": result.realized_extra,
        "extra_time_measured": _opt_float(result.extra_time_measured),
        "sa_fraction": result.sa_fraction,
        "first_pass_s": _opt_float(result.first_pass_s),
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
        "skipped_steps": int(result.skipped_steps or 0),
        "peak_memory_bytes": result.peak_memory_bytes,
        **manifest_columns(result.manifest or {}),
    }


def manifest_columns(manifest: dict[str, object]) -> dict[str, object]:
    """The manifest's values under their trial-row columns (null where a key is missing)."""
    return {name: manifest.get(name) for name in MANIFEST_KEYS}


def epoch_rows(cell_id: str, attempt_id: str, result: TrainResult) -> list[dict[str, object]]:
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
) -> dict[str, object]:
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


def cell_rows(cells: Iterable[Cell], profile: str | None) -> list[dict[str, object]]:
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
            "figure": c.figure,
            "table": c.table,
            "group_index": c.group_index,
        }
        for c in cells
    ]


def failure_row(cell: Cell, error: str) -> dict[str, object]:
    """A `failures` row: a crashed attempt of `cell`."""
    return {
        "cell_id": cell.cell_id,
        "sweep": cell.sweep,
        "group": cell.group,
        "error": error,
        "failed_at": utc_now(),
    }


def cost_columns(trials: pd.DataFrame) -> pd.DataFrame:
    """`extra_passes_model` and `extra_time_measured` on every trials row, also on rows written
    before they were stored (filled from `realized_extra` and from the step times, as the trainer
    computes them) and on cells without a timed base step (SA at every step): their base step is
    that of the SGD cell (algorithm sgd) of the same model, dataset, batch size and seed."""
    trials = trials.copy()
    for col in ("extra_passes_model", "extra_time_measured", "sa_fraction"):
        if col not in trials.columns:
            trials[col] = np.nan
    passes = trials["extra_passes_model"].astype(float)
    trials["extra_passes_model"] = passes.fillna(trials["realized_extra"].astype(float))
    share = trials["sa_fraction"].astype(float).fillna(trials["realized_extra"].astype(float))
    key = ["model", "dataset", "batch_size", "seed"]
    sgd = trials[trials["algorithm"] == "sgd"].groupby(key, dropna=False)["sgd_step_s"].mean()
    base = trials["sgd_step_s"].astype(float)
    if len(sgd):
        fallback = trials.join(sgd.rename("_sgd_base"), on=key)["_sgd_base"].astype(float)
        base = base.fillna(fallback)
    timed = share * (trials["sa_step_s"].astype(float) / base - 1.0)
    timed = timed.where(share > 0, 0.0)
    trials["extra_time_measured"] = trials["extra_time_measured"].astype(float).fillna(timed)
    return trials


def atom_columns(atoms: dict[str, float] | None) -> dict[str, float | None]:
    """A probe's measured step atoms (`StepAtoms` as a dict) under their probes columns."""
    atoms = atoms or {}
    return {column: atoms.get(name) for name, column in ATOM_COLUMNS.items()}


def atoms_of(row: tuple) -> StepAtoms | None:
    """The StepAtoms of a probes row (None for probes written before atoms were measured)."""
    values = {name: getattr(row, column, None) for name, column in ATOM_COLUMNS.items()}
    values = {k: None if v is None or v != v else float(v) for k, v in values.items()}
    if any(values[k] is None for k in ("base_step", "fb", "vector")):
        return None
    return StepAtoms(**{k: v for k, v in values.items() if v is not None})

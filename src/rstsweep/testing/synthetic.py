"""A synthetic result store of the real sweep grid, for tests and the analysis benchmark.

`grid_cells(sweeps_file, profile)` expands the sweeps file's cells (real cell_ids, groups, labels,
configs, figure/table tags; the `paper` profile gives the full grid of Zhao et al.);
`write_synthetic_store` writes the five store tables (`cells`, `draws`, `epochs`, `trials`,
`failures`) with the declared schemas and the store's atomic part-file writer, in bulk (one part
file per table), so a paper-sized store takes seconds. Trials and cells rows go through the
store's own row mapping (`rstsweep.store.rows`), from real `TrainResult` objects. Values are
plausible, not real: test error falls from SGD's to SAM's level as the effective penalty p·α
grows (and rises again past ~1.3), wall time grows with the realized extra passes, and the coin
draws are the real ones (`Schedule.draws(T, seed)`); a closed-loop policy cell (`budget(0.5)`,
`aesam`) gets a synthetic per-step signal ‖g_t‖² (a noisy decay) and the draws the policy makes
from it (`Policy.replay`), so its draws row passes the same replay check as a trained one.
`synthetic_results` yields the same cells as whole `TrainResult`s (epochs included) for writing a
store the way a run does, one `Store.write_result` per cell (`benchmarks/bench_store.py`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pyarrow as pa

from rstsweep.analysis.tags import sweep_tags
from rstsweep.core.catalog import TRAIN_SIZES, steps_per_epoch
from rstsweep.core.result import EpochRecord, TrainResult
from rstsweep.schedules import Schedule, parse
from rstsweep.store.rows import cell_rows, pack_draws, pack_signal, trial_row
from rstsweep.store.schema import TABLES
from rstsweep.store.store import Store
from rstsweep.sweeps import Cell, ProfileSpec, SweepsFile, expand, load_sweeps

# (SGD error %, SAM error %) per (model, dataset): roughly the paper's levels.
_LEVELS = {
    ("resnet18", "cifar10"): (4.4, 3.7),
    ("resnet18", "cifar100"): (21.6, 19.7),
    ("wrn-28-10", "cifar10"): (3.5, 2.75),
    ("wrn-28-10", "cifar100"): (18.9, 16.3),
    ("vgg16-bn", "cifar10"): (5.8, 5.0),
    ("vgg16-bn", "cifar100"): (26.0, 24.2),
    ("vit-s16", "cifar10"): (13.0, 11.5),
    ("vit-s16", "cifar100"): (38.0, 35.0),
    ("resnet50", "imagenet"): (23.6, 22.9),
    ("resnet101", "imagenet"): (22.0, 21.1),
    ("fastcnn", "fashion-mnist"): (9.5, 9.0),
}
_STEP_S = {"resnet18": 0.03, "wrn-28-10": 0.12, "vgg16-bn": 0.025, "vit-s16": 0.05}
_STEP_S |= {"resnet50": 0.35, "resnet101": 0.55, "fastcnn": 0.004}


def grid_cells(
    sweeps_file: str | os.PathLike[str] | SweepsFile,
    profile: str = "paper",
    sweeps: Iterable[str] | None = None,
    profile_spec: Mapping[str, object] | None = None,
) -> list[Cell]:
    """The real cells of `sweeps` (default: every sweep of the file) under `profile`, expanded by
    `rstsweep.sweeps.expand`, so a synthetic store has the real cell_ids, groups, labels and
    configs. `profile_spec` (a profiles.<name> mapping) adds or replaces the profile first, e.g.
    {"seeds": [0, 1], "models": ["resnet18"], "overrides": {"epochs": 2}} for a small test store.
    Cells carry their sweep's `figure:`/`table:` tags and Fig. 2 group number (kept where the
    expansion already set them).
    """
    spec = sweeps_file if isinstance(sweeps_file, SweepsFile) else load_sweeps(sweeps_file)
    if profile_spec is not None:
        profiles = dict(spec.profiles) | {profile: ProfileSpec.model_validate(dict(profile_spec))}
        spec = spec.model_copy(update={"profiles": profiles})
    tags = sweep_tags(spec)
    names = list(spec.sweeps) if sweeps is None else list(sweeps)
    cells = [cell for name in names for cell in expand(spec, name, profile)]
    return [_tagged(cell, *tags.of(cell.sweep, cell.group)) for cell in cells]


def _tagged(cell: Cell, figure: str | None, table: str | None, group_index: int | None) -> Cell:
    found = {"figure": figure, "table": table, "group_index": group_index}
    missing = {k: v for k, v in found.items() if getattr(cell, k) is None}
    return dataclasses.replace(cell, **missing) if missing else cell


# ----------------------------------------------------------------------------- values


def _steps_per_epoch(cfg: dict, override: int | None) -> int:
    """Steps per epoch as the trainer counts them (the catalogue's batching rule)."""
    if override:
        return override
    size = cfg.get("train_subset") or TRAIN_SIZES.get(str(cfg["dataset"]), 10_000)
    return steps_per_epoch(int(size), int(cfg["batch_size"]))


def _error(cfg: dict, realized: float, rng: np.random.Generator) -> float:
    """Plausible test error (fraction): SGD's level -> SAM's as the penalty p·α grows."""
    sgd, sam = _LEVELS.get((cfg["model"], cfg["dataset"]), (10.0, 9.0))
    if cfg["augment"] == "cutout":
        sgd, sam = sgd * 0.9, sam * 0.9
    penalty = realized * float(cfg["alpha"]) if cfg["algorithm"] != "sgd" else 0.0
    gain = (1 - np.exp(-3.0 * penalty)) / (1 - np.exp(-3.0))
    err = sgd - (sgd - sam) * min(gain, 1.05) + 0.6 * max(0.0, penalty - 1.3) ** 2
    err += rng.normal(0.0, 0.05 + 0.1 * (sgd - sam))
    return float(np.clip(err, 0.1, 99.0)) / 100.0


def _signal(T: int, rng: np.random.Generator) -> np.ndarray:
    """A plausible ‖g_t‖² trace (float32, as the trainer records it): a decay with noise."""
    trend = 0.2 + 4.0 * np.exp(-5.0 * np.arange(T) / max(T, 1))
    return (trend * rng.lognormal(0.0, 0.5, T)).astype(np.float32)


def _draws(cfg: dict, schedule: Schedule, T: int, rng) -> tuple[np.ndarray, np.ndarray | None]:
    """(X_0..X_{T-1}, the policy's signal or None)."""
    if cfg["algorithm"] == "sgd":
        return np.zeros(T, dtype=bool), None
    if schedule.is_policy:
        signal = _signal(T, rng)
        return schedule.replay(signal, cfg["seed"]), signal
    return schedule.draws(T, cfg["seed"]), None


def _cell_values(cfg: dict, steps_per_epoch: int | None, rng: np.random.Generator) -> dict:
    schedule: Schedule = parse(str(cfg["schedule"]))
    spe = _steps_per_epoch(cfg, steps_per_epoch)
    epochs = int(cfg["epochs"])
    T = spe * epochs
    draws, signal = _draws(cfg, schedule, T, rng)
    sa_steps = int(draws.sum())
    realized = sa_steps / T
    sgd_step = _STEP_S.get(str(cfg["model"]), 0.05) * rng.normal(1.0, 0.01)
    sa_step = 2.0 * sgd_step * rng.normal(1.0, 0.02)
    time_s = (T * sgd_step + sa_steps * (sa_step - sgd_step)) * rng.normal(1.0, 0.01)
    per_epoch_sa = np.cumsum(draws.reshape(epochs, spe).sum(axis=1))
    return {
        "schedule": schedule,
        "steps": T,
        "spe": spe,
        "draws": draws,
        "signal": signal,
        "sa_steps": sa_steps,
        "realized": realized,
        "sgd_step": sgd_step,
        "sa_step": sa_step if cfg["algorithm"] != "sgd" else None,
        "time_s": time_s,
        "test_error": _error(cfg, realized, rng),
        "sa_cum": per_epoch_sa,
    }


def _result(cell: Cell, cfg: dict, v: dict) -> TrainResult:
    """The TrainResult a trainer would have returned for these synthetic values (epochs are
    written in bulk by `_epoch_table`, so the result carries none)."""
    sched: Schedule = v["schedule"]
    err = v["test_error"]
    sgd = cfg["algorithm"] == "sgd"
    return TrainResult(
        cell_id=cell.cell_id,
        status="ok",
        error=None,
        steps=v["steps"],
        sa_steps=v["sa_steps"],
        expected_extra=0.0 if sgd else sched.expected_extra(v["steps"]),
        closed_form_extra=0.0 if sgd else sched.closed_form_extra,
        train_time_s=v["time_s"],
        sgd_step_s=v["sgd_step"],
        sa_step_s=v["sa_step"],
        train_loss=err * 0.2,
        train_error=err * 0.1,
        test_loss=err * 4.0,
        test_error=err,
        draws=v["draws"],
        signals=v["signal"],
    )


def synthetic_results(
    cells: list[Cell], *, steps_per_epoch: int | None = None, seed: int = 0
) -> Iterator[tuple[Cell, TrainResult]]:
    """(cell, TrainResult with its epochs) for each unique cell of `cells`, in order: the values
    of `write_synthetic_store`, shaped as a trainer returns them, for `Store.write_result`."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    for cell in cells:
        if cell.cell_id in seen:
            continue
        seen.add(cell.cell_id)
        cfg = cell.config.model_dump(mode="json")
        v = _cell_values(cfg, steps_per_epoch, rng)
        epochs = _epoch_table([(cell.cell_id, "", cfg["epochs"], v)])
        names = [n for n in epochs.column_names if n not in ("cell_id", "attempt_id")]
        records = [EpochRecord(**{n: row[n] for n in names}) for row in epochs.to_pylist()]
        yield cell, dataclasses.replace(_result(cell, cfg, v), epochs=records)


def _epoch_table(finished: list[tuple[str, str, int, dict]]) -> pa.Table:
    """Every finished cell's epoch rows, vectorised per epoch count: test error decays to the
    cell's final value, cumulative steps/SA steps/time end at the trial's totals."""
    chunks = []
    by_epochs: dict[int, list[tuple[str, str, int, dict]]] = {}
    for item in finished:
        by_epochs.setdefault(int(item[2]), []).append(item)
    for n_ep, items in by_epochs.items():
        e = np.arange(1, n_ep + 1)
        shape = (np.exp(-5 * e / n_ep) - np.exp(-5.0)) / (1 - np.exp(-5.0))  # 1 -> 0 at the end
        final = np.array([v["test_error"] for *_, v in items])[:, None]
        spe = np.array([v["spe"] for *_, v in items])[:, None]
        sa = np.stack([v["sa_cum"] for *_, v in items])
        steps = spe * e[None, :]
        passes = steps + sa  # an SA step costs about two passes
        time_s = np.array([v["time_s"] for *_, v in items])[:, None] * passes / passes[:, -1:]
        test_err = final + (0.9 - final) * shape[None, :]
        n = len(items)
        chunks.append(
            {
                "cell_id": np.repeat([i[0] for i in items], n_ep),
                "attempt_id": np.repeat([i[1] for i in items], n_ep),
                "epoch": np.tile(e, n),
                "train_loss": (2.3 * shape[None, :] + 0.2 * final).ravel(),
                "train_error": (0.1 * test_err).ravel(),
                "test_loss": (4.0 * test_err).ravel(),
                "test_error": test_err.ravel(),
                "lr": np.tile(0.05 * (1 + np.cos(np.pi * (e - 1) / n_ep)), n),
                "steps": steps.ravel(),
                "sa_steps": sa.ravel(),
                "time_s": time_s.ravel(),
            }
        )
    if not chunks:
        return TABLES["epochs"].empty_table()
    merged = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return pa.table(merged, schema=TABLES["epochs"])


def write_synthetic_store(
    root: str | os.PathLike[str] | Store,
    cells: list[Cell],
    *,
    unfinished: Mapping[str, float] | None = None,
    steps_per_epoch: int | None = None,
    seed: int = 0,
    profile: str = "synthetic",
) -> dict[str, int]:
    """Write a synthetic store of `cells` (see `grid_cells`) at `root`; returns rows per table.

    `unfinished` maps sweep -> fraction of its cells left pending (recorded in `cells`, no trial:
    a partly finished sweep, with a recorded failure for a few of them). `steps_per_epoch`
    overrides the cells' own (train size // batch size), to keep test stores small.
    """
    rng = np.random.default_rng(seed)
    pending = _pending_ids(cells, unfinished or {}, rng)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    unique = {c.cell_id: c for c in reversed(cells)}  # first membership row of each cell wins
    trials, draws, finished = [], [], []
    for cell in (c for cid, c in unique.items() if cid not in pending):
        cfg = cell.config.model_dump(mode="json")
        v = _cell_values(cfg, steps_per_epoch, rng)
        attempt = "syn-" + cell.cell_id
        row = trial_row(cell, _result(cell, cfg, v), profile, attempt)
        trials.append(row | {"versions": '{"rstsweep": "synthetic"}', "finished_at": now})
        bits = pack_draws(v["draws"])
        draws.append((cell.cell_id, attempt, v["steps"], bits, pack_signal(v["signal"])))
        finished.append((cell.cell_id, attempt, cfg["epochs"], v))
    store = root if isinstance(root, Store) else Store(root)
    frame = _cells_frame(cells, profile)
    cells_table = pa.Table.from_pandas(frame, schema=TABLES["cells"], preserve_index=False)
    _write(store, "cells", cells_table)
    cols = list(zip(*draws, strict=True)) if draws else [[] for _ in TABLES["draws"].names]
    draws_cols = dict(zip(TABLES["draws"].names, cols, strict=True))
    _write(store, "draws", pa.table(draws_cols, schema=TABLES["draws"]))
    epochs_table = _epoch_table(finished)
    _write(store, "epochs", epochs_table)
    # the trials rows (the "done" markers) last, as the real store writes them
    _write(store, "trials", pa.Table.from_pylist(trials, schema=TABLES["trials"]))
    failures = _failure_rows(cells, pending, now)
    _write(store, "failures", pa.Table.from_pylist(failures, schema=TABLES["failures"]))
    return {
        "cells": len(frame),
        "trials": len(trials),
        "draws": len(draws),
        "epochs": epochs_table.num_rows,
        "failures": len(failures),
    }


def _pending_ids(rows: list[Cell], unfinished: Mapping[str, float], rng) -> set[str]:
    pending: set[str] = set()
    for sweep, fraction in unfinished.items():
        ids = sorted({c.cell_id for c in rows if c.sweep == sweep})
        k = round(len(ids) * float(fraction))
        pending |= set(rng.choice(ids, size=k, replace=False).tolist()) if k else set()
    return pending


def _cells_frame(rows: list[Cell], profile: str) -> pd.DataFrame:
    frame = pd.DataFrame(cell_rows(rows, profile), columns=TABLES["cells"].names)
    return frame.drop_duplicates(subset=["sweep", "group", "label", "cell_id"])


def _failure_rows(rows: list[Cell], pending: set[str], now: datetime) -> list[dict]:
    """One recorded crash for the first few pending cells (a partly finished sweep has some)."""
    seen: dict[str, Cell] = {}
    for c in rows:
        if c.cell_id in pending:
            seen.setdefault(c.cell_id, c)
    return [
        {
            "cell_id": cid,
            "sweep": c.sweep,
            "group": c.group,
            "error": "synthetic crash",
            "failed_at": now,
        }
        for cid, c in list(seen.items())[:3]
    ]


def _write(store: Store, name: str, table: pa.Table) -> None:
    store.write_table(name, table)


def small_store(
    root: str | os.PathLike[str] | Store,
    sweeps_file: str | os.PathLike[str] | SweepsFile,
    *,
    sweeps: Iterable[str],
    models: Iterable[str] = ("resnet18",),
    datasets: Iterable[str] = ("cifar10", "cifar100"),
    seeds: int = 3,
    epochs: int = 2,
    steps_per_epoch: int = 10,
    unfinished: Mapping[str, float] | None = None,
) -> list[Cell]:
    """A small synthetic store (tests): `sweeps` of the real grid under a profile with the given
    models, datasets, seeds and epochs, T = steps_per_epoch × epochs. Returns the cells."""
    profile = {
        "seeds": list(range(seeds)),
        "models": list(models),
        "datasets": list(datasets),
        "overrides": {"epochs": epochs},
    }
    cells = grid_cells(sweeps_file, "small", sweeps, profile_spec=profile)
    write_synthetic_store(
        root, cells, unfinished=unfinished, steps_per_epoch=steps_per_epoch, profile="small"
    )
    return cells

"""Load a result store for analysis and aggregate its trials over seeds (vectorised pandas).

Owns the analysis view of a store: which cells belong to which sweep/group and what each sweep
feeds (the `cells` table with its figure/table tags, falling back to the trials rows' own
sweep/group and, for null tags, to the shipped sweeps.yaml: see `tags`), the per-seed extra wall
time relative to the SGD cell of the same setting and seed, and the per-case aggregates (mean ±
std over seeds) that every figure and table draws from. Reads the Parquet store only, through
`rstsweep.store.store`.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rstsweep.analysis.tags import TAG_COLUMNS, fill_missing_tags
from rstsweep.core.config import identity_of
from rstsweep.store.schema import TABLES
from rstsweep.store.store import Store, read_table

# The columns that make two cells "the same experiment up to its seed" when they share a panel:
# endpoints (SGD/SAM) are matched to RST cells by this setting (plus seed for extra wall time).
SETTING = [
    "model",
    "dataset",
    "augment",
    "epochs",
    "train_subset",
    "label_noise",
    "base_optimizer",
    "batch_size",
]
TRIG_FAMILIES = ("cos1", "cos2", "sin1", "sin2")
MODEL_ORDER = ("resnet18", "wrn-28-10", "vgg16-bn", "vit-s16", "resnet50", "resnet101")
DATASET_ORDER = ("cifar10", "cifar100")
MODEL_NAMES = {
    "resnet18": "ResNet-18",
    "resnet50": "ResNet-50",
    "resnet101": "ResNet-101",
    "wrn-28-10": "WRN-28-10",
    "wrn-16-4": "WRN-16-4",
    "vgg16-bn": "VGG16-BN",
    "vit-s16": "ViT-S16",
    "fastcnn": "fast CNN",
}
DATASET_NAMES = {
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "fashion-mnist": "Fashion-MNIST",
    "imagenet": "ImageNet",
}

# The five groups of Fig. 2, by "<family>-<group_index>": (legend name, colour, marker).
GROUPS = {
    "piecewise-1": ("piecewise 1: a_p = 0 (x = Δη)", "tab:orange", "o"),
    "piecewise-2": ("piecewise 2: a_p = 1 (x = Δη)", "tab:red", "v"),
    "piecewise-3": ("piecewise 3: b_p = ½ (x = a_p)", "tab:brown", "^"),
    "linear-1": ("linear 1 (x = Δη)", "tab:green", "s"),
    "linear-2": ("linear 2: Δη = ½ (x = b_l)", "tab:cyan", "D"),
}
_GROUP_FAMILIES = ("piecewise", "linear")


def group_keys(rows: pd.DataFrame) -> pd.Series:
    """'piecewise-1'…'linear-2' of each row from its schedule family and stored Fig. 2 group
    number (`group_index`); None for rows outside a numbered piecewise/linear group."""
    index = pd.to_numeric(rows["group_index"], errors="coerce").astype("Int64")
    keyed = rows["family"].isin(_GROUP_FAMILIES) & index.notna()
    text = rows["family"].astype(str) + "-" + index.astype(str)
    return text.astype(object).where(keyed, None)


def read_store_table(root: str | os.PathLike[str] | Store, name: str) -> pd.DataFrame:
    """One deduplicated table of the store (the store's own reader; empty frame if absent)."""
    frame = read_table(root, name)
    if frame.empty and len(frame.columns) == 0:
        frame = pd.DataFrame(columns=TABLES[name].names)
    return frame


def ordered(values: list | pd.Series | np.ndarray, preferred: tuple[str, ...]) -> list[str]:
    """Unique non-null values, the `preferred` ones first in that order, the rest sorted."""
    present = {str(v) for v in pd.Series(values).dropna().unique()}
    return [v for v in preferred if v in present] + sorted(present - set(preferred))


def display_model(name: str) -> str:
    return MODEL_NAMES.get(name, name)


def display_dataset(name: str) -> str:
    return DATASET_NAMES.get(name, name)


def _case_id(config_json: object, fallback: str) -> str:
    """Hash of the cell's config without its seed: cells equal up to the seed share a case."""
    if not isinstance(config_json, str) or not config_json:
        return fallback
    try:
        config = json.loads(config_json)
    except ValueError:
        return fallback
    # the cell's identity (runtime-only fields dropped) without the seed, which varies in a case
    config = {k: v for k, v in identity_of(config).items() if k != "seed"}
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _key_strings(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One string per row joining `columns` (null-safe), for grouping and matching on settings."""
    if frame.empty:
        return pd.Series([], dtype=object, index=frame.index)
    parts = [frame[c].astype(object).where(frame[c].notna(), "∅").astype(str) for c in columns]
    out = parts[0]
    for part in parts[1:]:
        out = out + "|" + part
    return out


def _role(trials: pd.DataFrame) -> pd.Series:
    """'sgd', 'sam' (SAM at every step: constant(1), α = 1) or 'rst' (anything else)."""
    is_sgd = trials["algorithm"] == "sgd"
    is_sam = (
        (trials["algorithm"] == "sam")
        & (trials["family"] == "constant")
        & np.isclose(trials["param_a"].astype(float), 1.0)
        & np.isclose(trials["alpha"].astype(float).fillna(1.0), 1.0)
    )
    return pd.Series(np.select([is_sgd, is_sam], ["sgd", "sam"], "rst"), index=trials.index)


def prepare_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """Add case_id, setting key, role and per-seed extra wall time vs SGD to the trials rows."""
    trials = trials.copy()
    for col in ("batch_size", "profile"):
        if col not in trials.columns:
            trials[col] = None
    fallback = _key_strings(trials, ["algorithm", "schedule", "alpha", "rho", *SETTING])
    trials["case_id"] = [
        _case_id(cj, fb) for cj, fb in zip(trials["config_json"], fallback, strict=True)
    ]
    trials["setting"] = _key_strings(trials, SETTING)
    trials["role"] = _role(trials)
    ok = trials["status"].fillna("ok") == "ok"
    trials["ok"] = ok
    trials["diverged"] = (~ok).astype(int)
    # Diverged cells count as "done" but must not move a mean: their metrics become NaN.
    for col in ("test_error", "train_time_s", "realized_extra", "test_loss"):
        trials[col] = trials[col].astype(float).where(ok)
    sgd = trials[ok & (trials["role"] == "sgd")]
    sgd_time = sgd.groupby(["setting", "seed"])["train_time_s"].mean().rename("sgd_time_s")
    trials = trials.join(sgd_time, on=["setting", "seed"])
    trials["extra_time_s"] = trials["train_time_s"] - trials["sgd_time_s"]
    trials["extra_time"] = trials["extra_time_s"] / trials["sgd_time_s"]
    return trials


def membership(cells: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """(sweep, group, label, x, cell_id, figure, table, group_index) rows: the cells table plus
    the trials' own sweep/group (a trial run before `record_cells` still shows up), one row per
    (sweep, group, label, cell). Null tags (old stores, unrecorded cells) come from the shipped
    sweeps.yaml (`tags.fill_missing_tags`)."""
    cols = ["sweep", "group", "label", "x", "cell_id"]
    frames = [f.reindex(columns=[*cols, *TAG_COLUMNS]) for f in (cells, trials) if len(f)]
    if not frames:
        return fill_missing_tags(pd.DataFrame(columns=cols))
    members = pd.concat(frames, ignore_index=True)
    members = members.dropna(subset=["sweep", "cell_id"])
    members = members.drop_duplicates(subset=["sweep", "group", "label", "cell_id"])
    return fill_missing_tags(members.reset_index(drop=True))


AGG_SPEC = {
    "label": ("label", "first"),
    "figure": ("figure", "first"),
    "table": ("table", "first"),
    "group_index": ("group_index", "first"),
    "x": ("x", "first"),
    "role": ("role", "first"),
    "family": ("family", "first"),
    "schedule": ("schedule", "first"),
    "param_a": ("param_a", "first"),
    "param_b": ("param_b", "first"),
    "algorithm": ("algorithm", "first"),
    "alpha": ("alpha", "first"),
    "rho": ("rho", "first"),
    "setting": ("setting", "first"),
    **{col: (col, "first") for col in SETTING},
    "profile": ("profile", "first"),
    "n_cells": ("cell_id", "nunique"),
    "n_seeds": ("test_error", "count"),
    "n_diverged": ("diverged", "sum"),
    "expected_extra": ("expected_extra", "mean"),
    "closed_form_extra": ("closed_form_extra", "mean"),
    "realized_extra_mean": ("realized_extra", "mean"),
    "realized_extra_std": ("realized_extra", "std"),
    "test_error_mean": ("test_error", "mean"),
    "test_error_std": ("test_error", "std"),
    "train_time_s_mean": ("train_time_s", "mean"),
    "train_time_s_std": ("train_time_s", "std"),
    "extra_time_mean": ("extra_time", "mean"),
    "extra_time_std": ("extra_time", "std"),
    "extra_time_s_mean": ("extra_time_s", "mean"),
    "extra_time_s_std": ("extra_time_s", "std"),
    "sgd_step_s": ("sgd_step_s", "mean"),
    "sa_step_s": ("sa_step_s", "mean"),
    "steps": ("steps", "mean"),
}


def aggregate(rows: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Mean ± std over seeds (std NaN for one seed) of the joined rows, one row per `by` group."""
    if rows.empty:
        return pd.DataFrame(columns=[*by, *AGG_SPEC])
    out = rows.groupby(by, dropna=False, sort=False).agg(**AGG_SPEC).reset_index()
    return out


@dataclass
class Results:
    """The analysis view of one store (built by `load`)."""

    root: Store  # the store it was read from (draws are read on first use)
    trials: pd.DataFrame  # every trials row, with case_id/setting/role/extra_time
    members: pd.DataFrame  # sweep membership (sweep, group, label, x, cell_id)
    joined: pd.DataFrame  # members ⋈ trials: one row per (sweep, group, cell) that is done
    cases: pd.DataFrame  # `joined` aggregated over seeds per (sweep, group, case_id)
    _draws: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def sweeps(self) -> list[str]:
        return sorted(self.members["sweep"].dropna().unique().tolist())

    def tagged(self, *, figure: str | None = None, table: str | None = None) -> list[str]:
        """The sweeps of this store tagged `figure` (e.g. "Fig. 1") or `table` ("Table 5")."""
        rows = self.members
        if figure is not None:
            rows = rows[rows["figure"] == figure]
        if table is not None:
            rows = rows[rows["table"] == table]
        return sorted(rows["sweep"].dropna().unique().tolist())

    def progress(self, sweeps: list[str]) -> tuple[int, int]:
        """(cells done, cells declared) over the union of `sweeps`."""
        ids = set(self.members.loc[self.members["sweep"].isin(sweeps), "cell_id"])
        done = ids & set(self.trials["cell_id"])
        return len(done), len(ids)

    def sweep_cases(self, sweeps: list[str]) -> pd.DataFrame:
        """The aggregated cases of `sweeps` (one row per sweep/group/case)."""
        return self.cases[self.cases["sweep"].isin(sweeps)].reset_index(drop=True)

    def unique_cases(self, rows: pd.DataFrame | None = None) -> pd.DataFrame:
        """Cases deduplicated across sweeps/groups (a cell shared by sweeps counts once)."""
        rows = self.cases if rows is None else rows
        return rows.drop_duplicates(subset=["case_id"]).reset_index(drop=True)

    def endpoints(self, settings: pd.Series | list[str]) -> pd.DataFrame:
        """SGD and SAM cases (from any sweep) whose setting is one of `settings`."""
        cases = self.unique_cases()
        mask = cases["role"].isin(["sgd", "sam"]) & cases["setting"].isin(list(settings))
        return cases[mask].reset_index(drop=True)

    @property
    def draws(self) -> pd.DataFrame:
        """The store's `draws` table, read on first use (only Figure 4 needs it); look a cell's
        X_t up with `rstsweep.store.store.draws_in`."""
        if self._draws is None:
            self._draws = read_store_table(self.root, "draws")
        return self._draws

    def signal_of(self, cell_id: str) -> np.ndarray | None:
        """The per-step ‖g_t‖² a closed-loop policy cell saw (None for schedules)."""
        from rstsweep.store.rows import unpack_signal

        if self._draws is None:
            self._draws = read_store_table(self.root, "draws")
        hit = self._draws[self._draws["cell_id"] == cell_id]
        if hit.empty or "signal" not in hit:
            return None
        value = hit["signal"].iloc[0]
        return unpack_signal(value) if isinstance(value, bytes) else None


def load(store: str | os.PathLike[str] | Store) -> Results:
    """Read trials and cells of `store` and aggregate them (draws are read lazily)."""
    root = store if isinstance(store, Store) else Store(store, read_only=True)
    trials = prepare_trials(read_store_table(root, "trials"))
    members = membership(read_store_table(root, "cells"), trials)
    joined = members.merge(
        trials.drop(columns=["sweep", "group", "label", "x"]), on="cell_id", how="inner"
    )
    joined["gkey"] = group_keys(joined)
    cases = aggregate(joined, ["sweep", "group", "case_id"])
    cases["gkey"] = group_keys(cases)
    return Results(root=root, trials=trials, members=members, joined=joined, cases=cases)

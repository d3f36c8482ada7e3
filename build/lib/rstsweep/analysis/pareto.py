"""Test error vs realized extra compute: the Pareto view of every case in the store, and the
"best at budget" table.

A case (mean over its seeds) is on the Pareto front of its model × dataset × setting when no other
case has both a lower-or-equal realized extra compute (`realized_extra`, extra passes per step
relative to SGD) and a lower-or-equal mean test error, one of them strictly. Every schedule family,
policy and algorithm competes on one axis: the question the paper's fixed schedules leave open is
which way of spending SAM steps is best for a given compute budget. Drawn and tabulated whenever
the store holds at least two schedule families.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rstsweep.analysis.case_tables import method_name, setting_text, sort_cases
from rstsweep.analysis.results import Results, display_dataset, display_model
from rstsweep.analysis.table import Column, Table, mean_std, raw
from rstsweep.core.format import MISSING, format_mean_std

BUDGETS = (0.1, 0.25, 0.5, 0.75)
_TOL = 1e-9  # a realized 0.25 counts as within a 0.25 budget despite float noise


def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """True for the points (x, y) no other point dominates when both are minimised (exact
    duplicates of a front point are on the front too). O(n log n): sweep by increasing x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.zeros(x.size, dtype=bool)
    best: tuple[float, float] | None = None
    for i in np.lexsort((y, x)):  # by x, ties by y
        if best is None or y[i] < best[1] or (x[i], y[i]) == best:
            keep[i] = True
            best = (x[i], y[i])
    return keep


def families(res: Results) -> list[str]:
    """The schedule families (and policies) of the store's finished cases."""
    cases = res.unique_cases().dropna(subset=["test_error_mean"])
    return sorted(cases["family"].dropna().unique().tolist())


def has_pareto_view(res: Results) -> bool:
    """Whether the store holds at least two families (one family alone is Figure 1's view)."""
    return len(families(res)) >= 2


def point_label(cases: pd.DataFrame) -> pd.Series:
    """'SGD', 'SAM', 'constant(0.6)', 'GNR α=2 constant(0.5)': what a point of the view is."""
    method = method_name(cases)
    text = cases["schedule"].astype(str).where(method == "SAM", method + " " + cases["schedule"])
    return text.where(cases["role"] == "rst", cases["role"].str.upper())


def marker_family(cases: pd.DataFrame) -> pd.Series:
    """The legend entry a point belongs to: 'SGD', 'SAM' or its schedule family."""
    return cases["family"].where(cases["role"] == "rst", cases["role"].str.upper())


def pareto_points(res: Results) -> pd.DataFrame:
    """Every finished case (deduplicated across sweeps) with realized extra compute and test
    error, its label, marker family and `on_front` (per model × dataset × setting)."""
    cases = res.unique_cases().dropna(subset=["test_error_mean", "realized_extra_mean"])
    if cases.empty:
        return cases.assign(point=[], marker=[], on_front=[])
    cases = sort_cases(cases).assign(point=point_label, marker=marker_family)
    front = pd.Series(False, index=cases.index)
    for _, g in cases.groupby(["model", "dataset", "setting"], sort=False):
        mask = pareto_mask(g["realized_extra_mean"], g["test_error_mean"])
        front[g.index] = mask
    return cases.assign(on_front=front).reset_index(drop=True)


# ----------------------------------------------------------------------------- best at budget


def best_at_budget_frame(res: Results, budgets: tuple[float, ...] = BUDGETS) -> pd.DataFrame:
    """Per model × dataset × setting and budget d: the case of lowest mean test error among those
    whose mean realized extra compute is ≤ d, beside SAM's error and the share of SAM's extra
    compute it saves (1 − its realized extra / SAM's). No row where no case fits the budget."""
    points = pareto_points(res)
    rows = []
    for _, g in points.groupby(["model", "dataset", "setting"], sort=False):
        sam = g[g["role"] == "sam"]
        sam_row = sam.iloc[0] if len(sam) else None
        for budget in budgets:
            fits = g[g["realized_extra_mean"] <= budget + _TOL]
            if fits.empty:
                continue
            best = fits.loc[fits["test_error_mean"].idxmin()]
            rows.append(_budget_row(best, sam_row, budget))
    return pd.DataFrame(rows)


def _budget_row(best: pd.Series, sam: pd.Series | None, budget: float) -> dict:
    sam_extra = np.nan if sam is None else float(sam["realized_extra_mean"])
    saving = 1 - best["realized_extra_mean"] / sam_extra if sam_extra else np.nan
    return {
        "model": best["model"],
        "dataset": best["dataset"],
        "augment": best["augment"],
        "epochs": best["epochs"],
        "train_subset": best["train_subset"],
        "label_noise": best["label_noise"],
        "budget": budget,
        "case": best["point"],
        "family": best["marker"],
        "realized_extra_mean": best["realized_extra_mean"],
        "realized_extra_std": best["realized_extra_std"],
        "test_error_pct_mean": best["test_error_mean"] * 100,
        "test_error_pct_std": best["test_error_std"] * 100,
        "sam_test_error_pct_mean": np.nan if sam is None else sam["test_error_mean"] * 100,
        "sam_test_error_pct_std": np.nan if sam is None else sam["test_error_std"] * 100,
        "sam_realized_extra_mean": sam_extra,
        "saving_vs_sam_pct": 100 * saving,
        "n_seeds": int(best["n_seeds"]),
    }


def _saving(f: pd.DataFrame) -> list[str]:
    shown = [format_mean_std(v, None, 0) for v in f["saving_vs_sam_pct"]]
    return [t if t == MISSING else f"{t} %" for t in shown]


BUDGET_COLUMNS = (
    Column("model", lambda f: f["model"].map(display_model)),
    Column("dataset", lambda f: f["dataset"].map(display_dataset)),
    Column("setting", setting_text, hide_if_uniform=True),
    Column("budget (extra compute ≤)", lambda f: [f"{b:g}" for b in f["budget"]]),
    Column("best case", raw("case")),
    Column("family", raw("family")),
    Column("extra compute realized", mean_std("realized_extra_mean", "realized_extra_std", 3)),
    Column("test error (%)", mean_std("test_error_pct_mean", "test_error_pct_std", 2)),
    Column("SAM (%)", mean_std("sam_test_error_pct_mean", "sam_test_error_pct_std", 2)),
    Column("compute saved vs SAM", _saving),
    Column("seeds", lambda f: f["n_seeds"].astype(str)),
)


def best_at_budget(res: Results) -> Table | None:
    """The "best at budget" table, or None when the store holds fewer than two families."""
    if not has_pareto_view(res):
        return None
    frame = best_at_budget_frame(res)
    title = "Best at budget: lowest test error within a realized extra compute budget"
    notes = (
        "extra compute: realized extra forward-backward passes per step over SGD's one (mean "
        "over seeds; SGD 0, SAM 1); compute saved vs SAM = 1 − extra compute / SAM's",
    )
    return Table("best_at_budget", title, frame, BUDGET_COLUMNS, notes)

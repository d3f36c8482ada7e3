"""Tables of aggregated cases (one row per sweep/group/case): Table 1, the numbered sweep tables
and one table per other sweep, plus Table 2 (the scheduling functions).

Test error in % (mean ± std over seeds; no ± for one seed), Δη expected and realized, train time,
extra wall time relative to the SGD cell of the same setting and seed, number of seeds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rstsweep.analysis.results import (
    DATASET_ORDER,
    MODEL_ORDER,
    display_dataset,
    display_model,
)
from rstsweep.analysis.table import Column, Table, fixed, mean_std, raw
from rstsweep.core.format import format_seeds, format_time_mean_std

_ROLE_ORDER = {"sgd": 0, "rst": 1, "sam": 2}


def sort_cases(cases: pd.DataFrame) -> pd.DataFrame:
    """Paper order: model, dataset, setting, then SGD < RST < SAM, group, Δη, parameters."""
    rank = {m: i for i, m in enumerate(MODEL_ORDER)}
    drank = {d: i for i, d in enumerate(DATASET_ORDER)}
    key = cases.assign(
        _m=cases["model"].map(rank).fillna(len(rank)),
        _d=cases["dataset"].map(drank).fillna(len(drank)),
        _r=cases["role"].map(_ROLE_ORDER),
    )
    cols = ["_m", "model", "_d", "dataset", "setting", "_r", "group", "expected_extra", "param_a"]
    cols.append("param_b")
    return key.sort_values(cols, na_position="first", kind="stable").drop(
        columns=["_m", "_d", "_r"]
    )


def case_name(cases: pd.DataFrame) -> pd.Series:
    """The sweep's label of the case, else SGD / SAM / '<algorithm> <schedule>'."""
    derived = cases["algorithm"].astype(str).str.upper() + " " + cases["schedule"].astype(str)
    derived = derived.where(cases["role"] == "rst", cases["role"].str.upper())
    return cases["label"].where(cases["label"].notna() & (cases["label"] != ""), derived)


def method_name(cases: pd.DataFrame) -> pd.Series:
    """Algorithm of the sharpness-aware branch, with α when it is not 1 (G-RST)."""
    alpha = cases["alpha"].astype(float)
    suffix = np.where(np.isclose(alpha.fillna(1.0), 1.0), "", " α=" + alpha.map("{:g}".format))
    return cases["algorithm"].astype(str).str.upper() + suffix


def case_frame(cases: pd.DataFrame) -> pd.DataFrame:
    """The raw-number rows of some aggregated cases, in paper order."""
    cases = sort_cases(cases)
    return pd.DataFrame(
        {
            "model": cases["model"],
            "dataset": cases["dataset"],
            "augment": cases["augment"],
            "group": cases["group"],
            "case": case_name(cases),
            "method": method_name(cases),
            "schedule": cases["schedule"],
            "expected_extra": cases["expected_extra"],
            "realized_extra_mean": cases["realized_extra_mean"],
            "realized_extra_std": cases["realized_extra_std"],
            "test_error_pct_mean": cases["test_error_mean"] * 100,
            "test_error_pct_std": cases["test_error_std"] * 100,
            "train_time_s_mean": cases["train_time_s_mean"],
            "train_time_s_std": cases["train_time_s_std"],
            "extra_time_pct_mean": cases["extra_time_mean"] * 100,
            "extra_time_pct_std": cases["extra_time_std"] * 100,
            "n_seeds": cases["n_seeds"].astype(int),
            "n_diverged": cases["n_diverged"].astype(int),
            "epochs": cases["epochs"],
            "train_subset": cases["train_subset"],
            "label_noise": cases["label_noise"],
        }
    ).reset_index(drop=True)


def setting_text(frame: pd.DataFrame) -> pd.Series:
    """'basic, 200 ep' (+ ', n=5000' for a training subset, ', noise 0.2' for label noise)."""
    text = frame["augment"].astype(str) + ", " + frame["epochs"].astype("Int64").astype(str) + " ep"
    subset = frame["train_subset"].astype("Int64")
    text = text + np.where(subset.notna(), ", n=" + subset.astype(str), "")
    noise = frame["label_noise"].astype(float).fillna(0.0)
    return text + np.where(noise > 0, ", noise " + noise.map("{:g}".format), "")


def _times(f: pd.DataFrame) -> list[str]:
    means, stds = f["train_time_s_mean"].astype(float), f["train_time_s_std"].astype(float)
    return [format_time_mean_std(m, s) for m, s in zip(means, stds, strict=True)]


def _seeds(f: pd.DataFrame) -> list[str]:
    return [format_seeds(n, d) for n, d in zip(f["n_seeds"], f["n_diverged"], strict=True)]


CASE_COLUMNS = (
    Column("model", lambda f: f["model"].map(display_model)),
    Column("dataset", lambda f: f["dataset"].map(display_dataset)),
    # a second setting (Cutout next to basic, a ci run next to the demo) gets its own column
    Column("setting", setting_text, hide_if_uniform=True),
    Column("group", lambda f: f["group"].fillna(""), hide_if_uniform=True),
    Column("case", raw("case")),
    Column("method", raw("method")),
    Column("Δη", fixed("expected_extra", 3)),
    Column("Δη realized", mean_std("realized_extra_mean", "realized_extra_std", 3)),
    Column("test error (%)", mean_std("test_error_pct_mean", "test_error_pct_std", 2)),
    Column("train time", _times),
    Column("extra time vs SGD (%)", mean_std("extra_time_pct_mean", "extra_time_pct_std", 1)),
    Column("seeds", _seeds),
)


def case_table(name: str, title: str, cases: pd.DataFrame, notes: list[str] | None = None):
    """A Table of aggregated cases."""
    return Table(name, title, case_frame(cases), CASE_COLUMNS, tuple(notes or ()))


def schedules_table(steps: int) -> Table:
    """Table 2 via `rstsweep.schedules.table.schedule_rows` (one example per family), with Δη
    both discrete (at T = `steps`) and in closed form."""
    from rstsweep.schedules.table import schedule_rows

    rows = pd.DataFrame(schedule_rows(steps))
    frame = pd.DataFrame(
        {
            "family": rows["family"],
            "p(τ)": rows["formula"],
            "example": rows["spec"],
            "closed_form": rows["closed_form_formula"].fillna(""),
            "closed_form_extra": rows["closed_form_extra"],
            "expected_extra": rows["expected_extra"],
        }
    )
    columns = (
        *(Column(c, raw(c)) for c in ("family", "p(τ)", "example", "closed_form")),
        Column("Δη closed form", fixed("closed_form_extra", 4)),
        Column("Δη discrete", fixed("expected_extra", 4)),
    )
    title = f"Table 2: scheduling functions (Δη discrete at T = {steps})"
    return Table("table2_schedules", title, frame, columns)

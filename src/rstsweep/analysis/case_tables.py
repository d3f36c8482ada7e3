"""Tables of aggregated cases (one row per sweep/group/case): Table 1, the numbered sweep tables
and one table per other sweep, plus Table 2 (the scheduling functions).

Test error in % (mean ± std over seeds; no ± for one seed), Δη expected and realized, train time,
extra wall time relative to the SGD cell of the same setting and seed, number of seeds; with the
paired differences (`paired`) each case's difference to SAM and to SGD of the same setting, matched
by seed, with its 95 % interval and the seeds a paired t-test would need.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rstsweep.analysis.paired import BOOTSTRAP_FROM, MAX_SEEDS, REFERENCES
from rstsweep.analysis.render import Column, Table, fixed, mean_std, raw
from rstsweep.analysis.results import (
    DATASET_ORDER,
    MODEL_ORDER,
    display_dataset,
    display_model,
)
from rstsweep.core.format import (
    RESOLVED_MARK,
    format_paired,
    format_seeds,
    format_seeds_needed,
    format_time_mean_std,
)
from rstsweep.schedules.listing import schedule_rows

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


def case_frame(cases: pd.DataFrame, paired: pd.DataFrame | None = None) -> pd.DataFrame:
    """The raw-number rows of some aggregated cases, in paper order; with `paired`
    (`paired.paired_frame`) the differences to SAM and SGD in points (`vs_sam_pct_mean`, ...)."""
    cases = sort_cases(cases)
    frame = pd.DataFrame(
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
    )
    if paired is not None:
        frame = pd.concat(
            [frame, paired_columns(paired.reindex(cases["case_id"]), frame.index)], axis=1
        )
    return frame.reset_index(drop=True)


def paired_columns(paired: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """The raw paired numbers of the tables' CSV: differences in points, n, p, seeds needed."""
    out = {}
    for ref in REFERENCES:
        for field in ("mean", "lo", "hi"):
            out[f"vs_{ref}_pct_{field}"] = paired[f"vs_{ref}_{field}"].to_numpy(float) * 100
        for field in ("n", "p", "seeds_needed", "resolved"):
            out[f"vs_{ref}_{field}"] = paired[f"vs_{ref}_{field}"].to_numpy()
    return pd.DataFrame(out, index=index)


def _paired_text(ref: str):
    cols = [f"vs_{ref}_pct_{k}" for k in ("mean", "lo", "hi")]
    return lambda f: [format_paired(*v) for v in f[cols].astype(float).itertuples(index=False)]


def _needed_text(f: pd.DataFrame) -> list[str]:
    pairs = zip(f["vs_sam_seeds_needed"], f["vs_sgd_seeds_needed"], strict=True)
    return [" / ".join(format_seeds_needed(n, MAX_SEEDS) for n in pair) for pair in pairs]


PAIRED_NOTE = (
    "vs SAM, vs SGD: paired difference in test error (points) to the SAM / SGD cell of the same "
    "setting and seed (same data order, initialisation and coins), mean [95 % interval: Student t "
    f"over seeds, percentile bootstrap from {BOOTSTRAP_FROM} seeds]; {RESOLVED_MARK} the interval "
    "excludes zero. Seeds needed: for a paired t-test to resolve the observed mean difference at "
    "80 % power (two-sided α = 0.05), from the observed sd of the differences."
)
PAIRED_COLUMNS = (
    Column("vs SAM (pp)", _paired_text("sam")),
    Column("vs SGD (pp)", _paired_text("sgd")),
    Column("seeds needed (SAM / SGD)", _needed_text),
)


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
    *PAIRED_COLUMNS,
    Column("train time", _times),
    Column("extra time vs SGD (%)", mean_std("extra_time_pct_mean", "extra_time_pct_std", 1)),
    Column("seeds", _seeds),
)


def case_table(
    name: str,
    title: str,
    cases: pd.DataFrame,
    notes: list[str] | None = None,
    paired: pd.DataFrame | None = None,
) -> Table:
    """A Table of aggregated cases; with `paired` (`paired.paired_frame` over the store) the
    paired differences to SAM and SGD and the seeds needed."""
    notes = list(notes or ())
    if paired is None:
        columns = tuple(c for c in CASE_COLUMNS if c not in PAIRED_COLUMNS)
        return Table(name, title, case_frame(cases), columns, tuple(notes))
    frame = case_frame(cases, paired)
    return Table(name, title, frame, CASE_COLUMNS, (*notes, PAIRED_NOTE))


def schedules_table(steps: int) -> Table:
    """Table 2 via `rstsweep.schedules.listing.schedule_rows` (one example per family), with Δη
    both discrete (at T = `steps`) and in closed form."""
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

"""Our own check of the paper's central ordering: SGD > RST > SAM in test error (Zhao et al.,
Fig. 1: every constant schedule lies between its SGD and SAM endpoints), by the means over seeds
and by paired tests (per-seed differences to the SGD and SAM cells of the same seed, `paired`):
the ordering holds for a case when RST − SGD is resolved below zero and RST − SAM above zero."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rstsweep.analysis.case_tables import case_name, sort_cases
from rstsweep.analysis.paired import MAX_SEEDS, paired_frame
from rstsweep.analysis.paper import rst_plain
from rstsweep.analysis.render import Column, Table, fixed, mean_std, raw
from rstsweep.analysis.results import Results, display_dataset, display_model
from rstsweep.core.format import (
    RESOLVED_MARK,
    format_paired,
    format_seeds_needed,
    format_share,
)

HOLDS, VIOLATED, UNRESOLVED = "holds", "violated", "unresolved"


def ordering_frame(res: Results, paired: pd.DataFrame | None = None) -> pd.DataFrame:
    """For every setting with SGD, SAM and constant-schedule RST cells: does SGD > RST > SAM hold
    for the mean test error of each RST case, and by paired tests?"""
    cases = res.unique_cases()
    rst = cases[rst_plain(cases) & (cases["role"] == "rst") & (cases["family"] == "constant")]
    ends = cases[cases["role"].isin(["sgd", "sam"])].drop_duplicates(["setting", "role"])
    wide = ends.pivot(index="setting", columns="role", values="test_error_mean")
    wide_std = ends.pivot(index="setting", columns="role", values="test_error_std")
    if not {"sgd", "sam"} <= set(wide.columns) or rst.empty:
        return pd.DataFrame()
    rst = rst.join(wide[["sgd", "sam"]], on="setting").dropna(subset=["sgd", "sam"])
    rst = rst.join(wide_std[["sgd", "sam"]].add_suffix("_std"), on="setting")
    rst = sort_cases(rst)
    err = rst["test_error_mean"]
    frame = pd.DataFrame(
        {
            "model": rst["model"],
            "dataset": rst["dataset"],
            "case": case_name(rst),
            "expected_extra": rst["expected_extra"],
            "sgd_pct": rst["sgd"] * 100,
            "sgd_pct_std": rst["sgd_std"] * 100,
            "rst_pct": err * 100,
            "rst_pct_std": rst["test_error_std"] * 100,
            "sam_pct": rst["sam"] * 100,
            "sam_pct_std": rst["sam_std"] * 100,
            "sgd_gt_rst_gt_sam": (rst["sgd"] > err) & (err > rst["sam"]),
            "n_seeds": rst["n_seeds"].astype(int),
        }
    ).reset_index(drop=True)
    paired = paired if paired is not None else paired_frame(res.trials, res.cases)
    sam_vs_sgd = paired.loc[ends[ends["role"] == "sam"]["case_id"]]
    sam_vs_sgd.index = ends[ends["role"] == "sam"]["setting"].to_numpy()
    part = _paired_part(paired.loc[rst["case_id"]], sam_vs_sgd.reindex(rst["setting"]))
    return pd.concat([frame, part], axis=1)


def _paired_part(p: pd.DataFrame, sam: pd.DataFrame) -> pd.DataFrame:
    """Paired columns of the RST rows (`p`) and of their setting's SAM − SGD (`sam`), in points."""
    out = {"n_paired": np.minimum(p["vs_sgd_n"], p["vs_sam_n"]).to_numpy()}
    for name, rows, ref in (
        ("rst_vs_sgd", p, "sgd"),
        ("rst_vs_sam", p, "sam"),
        ("sam_vs_sgd", sam, "sgd"),
    ):
        for field in ("mean", "lo", "hi"):
            out[f"{name}_pct_{field}"] = rows[f"vs_{ref}_{field}"].to_numpy(float) * 100
    below_sgd, above_sam = p["vs_sgd_hi"] < 0, p["vs_sam_lo"] > 0
    wrong = (p["vs_sgd_lo"] > 0) | (p["vs_sam_hi"] < 0)
    verdict = np.select([below_sgd & above_sam, wrong], [HOLDS, VIOLATED], UNRESOLVED)
    out["paired_verdict"] = verdict
    # resolving both differences takes the larger of the two seed counts
    out["seeds_needed"] = np.fmax(p["vs_sgd_seeds_needed"], p["vs_sam_seeds_needed"]).to_numpy()
    return pd.DataFrame(out)


def ordering_notes(order: pd.DataFrame) -> list[str]:
    """One verdict line per model × dataset."""
    notes = []
    for (model, dataset), g in order.groupby(["model", "dataset"], sort=False):
        holds = int(g["sgd_gt_rst_gt_sam"].sum())
        gain = g["sgd_pct"].iloc[0] - g["sam_pct"].iloc[0]
        stds = [g["sgd_pct_std"].iloc[0], g["sam_pct_std"].iloc[0]]
        spread = (
            "one seed: no spread over seeds"
            if all(pd.isna(stds))
            else f"largest std over seeds {np.nanmax(stds):.2f}"
        )
        verdict = "SAM beats SGD" if gain > 0 else "SAM does NOT beat SGD"
        first = g.iloc[0]
        sam_sgd = format_paired(*(first[f"sam_vs_sgd_pct_{k}"] for k in ("mean", "lo", "hi")))
        tests = g["paired_verdict"].value_counts()
        notes.append(
            f"{display_model(model)} · {display_dataset(dataset)}: SGD > RST > SAM holds for "
            f"{format_share(holds, len(g), 'RST cases')} by the means; by paired tests "
            f"{tests.get(HOLDS, 0)} hold, {tests.get(VIOLATED, 0)} are violated, "
            f"{tests.get(UNRESOLVED, 0)} are unresolved; {verdict} by {gain:+.2f} points "
            f"({spread}; paired SAM − SGD {sam_sgd})."
        )
    return notes


def _paired_cols(name: str):
    cols = [f"{name}_pct_{k}" for k in ("mean", "lo", "hi")]
    return lambda f: [format_paired(*v) for v in f[cols].astype(float).itertuples(index=False)]


PAIRED_NOTE = (
    "RST − SGD, RST − SAM: paired differences in test error (points) to the SGD / SAM cell of "
    f"the same seed, mean [95 % interval]; {RESOLVED_MARK} the interval excludes zero. Paired "
    "test: holds when RST − SGD < 0 and RST − SAM > 0 are both resolved, violated when either is "
    "resolved the other way. Seeds needed: for a paired t-test to resolve both at 80 % power."
)


ORDERING_COLUMNS = (
    Column("model", lambda f: f["model"].map(display_model)),
    Column("dataset", lambda f: f["dataset"].map(display_dataset)),
    Column("RST case", raw("case")),
    Column("Δη", fixed("expected_extra", 3)),
    Column("SGD (%)", mean_std("sgd_pct", "sgd_pct_std", 2)),
    Column("RST (%)", mean_std("rst_pct", "rst_pct_std", 2)),
    Column("SAM (%)", mean_std("sam_pct", "sam_pct_std", 2)),
    Column("SGD > RST > SAM", lambda f: np.where(f["sgd_gt_rst_gt_sam"], "yes", "no")),
    Column("RST − SGD (pp)", _paired_cols("rst_vs_sgd")),
    Column("RST − SAM (pp)", _paired_cols("rst_vs_sam")),
    Column("paired test", raw("paired_verdict")),
    Column(
        "seeds needed", lambda f: [format_seeds_needed(n, MAX_SEEDS) for n in f["seeds_needed"]]
    ),
    Column("seeds", lambda f: f["n_seeds"].astype(str)),
)


def ordering_table(res: Results, paired: pd.DataFrame | None = None) -> Table | None:
    """The ordering check, or None when no setting has SGD, SAM and constant RST cases."""
    order = ordering_frame(res, paired)
    if order.empty:
        return None
    title = "Ordering check: SGD > RST > SAM?"
    notes = (*ordering_notes(order), PAIRED_NOTE)
    return Table("ordering", title, order, ORDERING_COLUMNS, notes)

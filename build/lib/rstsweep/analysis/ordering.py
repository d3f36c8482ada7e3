"""Our own check of the paper's central ordering: SGD > RST > SAM in test error (Zhao et al.,
Fig. 1: every constant schedule lies between its SGD and SAM endpoints)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rstsweep.analysis.case_tables import case_name, sort_cases
from rstsweep.analysis.paper import rst_plain
from rstsweep.analysis.results import Results, display_dataset, display_model
from rstsweep.analysis.table import Column, Table, fixed, mean_std, raw
from rstsweep.core.format import format_share


def ordering_frame(res: Results) -> pd.DataFrame:
    """For every setting with SGD, SAM and constant-schedule RST cells: does SGD > RST > SAM hold
    for the mean test error of each RST case?"""
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
    return pd.DataFrame(
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
        notes.append(
            f"{display_model(model)} · {display_dataset(dataset)}: SGD > RST > SAM holds for "
            f"{format_share(holds, len(g), 'RST cases')}; {verdict} by {gain:+.2f} points "
            f"({spread})."
        )
    return notes


ORDERING_COLUMNS = (
    Column("model", lambda f: f["model"].map(display_model)),
    Column("dataset", lambda f: f["dataset"].map(display_dataset)),
    Column("RST case", raw("case")),
    Column("Δη", fixed("expected_extra", 3)),
    Column("SGD (%)", mean_std("sgd_pct", "sgd_pct_std", 2)),
    Column("RST (%)", mean_std("rst_pct", "rst_pct_std", 2)),
    Column("SAM (%)", mean_std("sam_pct", "sam_pct_std", 2)),
    Column("SGD > RST > SAM", lambda f: np.where(f["sgd_gt_rst_gt_sam"], "yes", "no")),
    Column("seeds", lambda f: f["n_seeds"].astype(str)),
)


def ordering_table(res: Results) -> Table | None:
    """The ordering check, or None when no setting has SGD, SAM and constant RST cases."""
    order = ordering_frame(res)
    if order.empty:
        return None
    title = "Ordering check: SGD > RST > SAM?"
    return Table("ordering", title, order, ORDERING_COLUMNS, tuple(ordering_notes(order)))

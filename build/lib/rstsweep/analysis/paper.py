"""The paper's reported numbers beside this store's: the `paper_vs_here` table.

The numbers live in package data (`rstsweep/data/paper_numbers.csv`), one row per number with its
source (Zhao et al., table or figure) and typed columns saying which of our cases it compares to:
`role` (sgd, sam, rst), a canonical `schedule` spec, or a Fig. 2 group (`family` + `group_index`)
with `pick` "best" (the group's lowest mean test error) or "all" (every cell of the group pooled).
An empty model/dataset matches any model/dataset of the store.
"""

from __future__ import annotations

import io
from importlib import resources

import numpy as np
import pandas as pd

from rstsweep.analysis.results import Results, display_dataset, display_model
from rstsweep.analysis.table import Column, Table, raw
from rstsweep.core.format import MISSING, format_mean_std

_TEXT = ("quantity", "model", "dataset", "role", "schedule", "family", "pick", "unit")
_DIGITS = {"%": 2, "min": 1, "s": 3}


def paper_numbers() -> pd.DataFrame:
    """The numbers the paper reports, typed: text columns ('' when empty), group_index Int64,
    value/std floats (std NaN when the paper gives none)."""
    text = resources.files("rstsweep").joinpath("data/paper_numbers.csv").read_text("utf-8")
    frame = pd.read_csv(io.StringIO(text), keep_default_na=False, dtype=str)
    for col in ("value", "std"):
        frame[col] = pd.to_numeric(frame[col].replace("", np.nan))
    frame["group_index"] = pd.to_numeric(frame["group_index"].replace("", np.nan)).astype("Int64")
    return frame


def case_text(p) -> str:
    """What a paper row compares: 'RST constant(0.8)', 'piecewise group 1, best case', 'SAM'."""
    if p.schedule:
        return f"{p.role.upper()} {p.schedule}"
    if p.family:
        which = "best case" if p.pick == "best" else "all cases"
        return f"{p.family} group {p.group_index}, {which}"
    return p.role.upper()


def rst_plain(cases: pd.DataFrame) -> pd.Series:
    """RST proper: the SAM branch, α = 1, basic augmentation (the paper's main setting)."""
    alpha = cases["alpha"].astype(float).fillna(1.0)
    return (cases["algorithm"] == "sam") & np.isclose(alpha, 1.0) & (cases["augment"] != "cutout")


def _matching(res: Results, p, model: str, dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the cases a paper row compares to, every case of that model/dataset)."""
    from rstsweep.schedules import parse

    cases = res.unique_cases()
    cases = cases[(cases["model"] == model) & (cases["dataset"] == dataset)]
    if p.schedule:
        hit = cases[rst_plain(cases) & (cases["schedule"] == parse(p.schedule).spec)]
    elif p.family:
        key = f"{p.family}-{p.group_index}"
        rows = res.cases[(res.cases["gkey"] == key) & (res.cases["role"] == p.role)]
        hit = rows[(rows["model"] == model) & (rows["dataset"] == dataset) & rst_plain(rows)]
        if p.pick == "best" and len(hit):
            hit = hit.nsmallest(1, "test_error_mean")
    else:
        hit = cases[(cases["role"] == p.role) & (cases["augment"] != "cutout")]
    return hit.dropna(subset=["test_error_mean"]), cases


def _ours(res: Results, p, model: str, dataset: str):
    """(mean, std, n_seeds, epochs) of our value for one paper row and (model, dataset), or None."""
    hit, cases = _matching(res, p, model, dataset)
    if hit.empty:
        return None
    first = hit.iloc[0]
    meta = (int(hit["n_seeds"].max()), int(first["epochs"]))
    if p.quantity == "test_error":
        return first["test_error_mean"] * 100, first["test_error_std"] * 100, *meta
    if p.quantity == "extra_time_pct":
        return first["extra_time_mean"] * 100, first["extra_time_std"] * 100, *meta
    if p.quantity == "extra_time_min":
        rows = res.joined[res.joined["case_id"].isin(hit["case_id"])]
        minutes = rows.drop_duplicates("cell_id")["extra_time_s"] / 60
        return minutes.mean(), minutes.std(), *meta
    if p.quantity == "saving_pct":
        sam = cases[(cases["role"] == "sam") & (cases["setting"] == first["setting"])]
        if sam.empty or not sam["extra_time_mean"].iloc[0]:
            return None
        return 100 * (1 - first["extra_time_mean"] / sam["extra_time_mean"].iloc[0]), np.nan, *meta
    if p.quantity == "step_time_s":
        col = "sa_step_s" if first["role"] == "sam" else "sgd_step_s"
        return first[col], np.nan, *meta
    return None


def paper_vs_here_frame(res: Results) -> pd.DataFrame:
    """One row per paper number and matching (model, dataset) of ours (NaN when absent)."""
    pairs = res.unique_cases()[["model", "dataset"]].drop_duplicates()
    here = ", ".join(f"{m}/{d}" for m, d in pairs.itertuples(index=False)) or "nothing"
    rows = []
    for p in paper_numbers().itertuples(index=False):
        match = pairs[
            ((pairs["model"] == p.model) | (p.model == ""))
            & ((pairs["dataset"] == p.dataset) | (p.dataset == ""))
        ]
        found = False
        for model, dataset in match.itertuples(index=False):
            ours = _ours(res, p, model, dataset)
            if ours is not None:
                rows.append(_row(p, model, dataset, ours, "here: this store"))
                found = True
        if not found:
            rows.append(_row(p, p.model, p.dataset, None, f"not in store (store has: {here})"))
    return pd.DataFrame(rows)


def _row(p, model: str, dataset: str, ours, note: str) -> dict:
    mean, std, seeds, epochs = ours if ours is not None else (np.nan, np.nan, 0, None)
    return {
        "quantity": p.quantity,
        "model": model or "any",
        "dataset": dataset or "any",
        **{c: getattr(p, c) for c in ("role", "schedule", "family", "group_index", "pick")},
        "case": case_text(p),
        "unit": p.unit,
        "paper": p.value,
        "paper_std": p.std,
        "here": mean,
        "here_std": std,
        "paper_setting": p.paper_setting,
        "here_setting": f"{seeds} seed(s), {epochs} epochs" if ours is not None else note,
        "source": p.source,
    }


def _with_unit(mean: str, std: str):
    def text(f: pd.DataFrame) -> list[str]:
        digits = f["unit"].map(_DIGITS).fillna(2).astype(int)
        values = zip(f[mean].astype(float), f[std].astype(float), digits, f["unit"], strict=True)
        shown = [(format_mean_std(m, s, d), u) for m, s, d, u in values]
        return [t if t == MISSING else f"{t} {u}" for t, u in shown]

    return text


PAPER_COLUMNS = (
    Column("quantity", raw("quantity")),
    Column("model", lambda f: f["model"].map(display_model)),
    Column("dataset", lambda f: f["dataset"].map(display_dataset)),
    Column("case", raw("case")),
    Column("paper", _with_unit("paper", "paper_std")),
    Column("here", _with_unit("here", "here_std")),
    Column("paper setting", raw("paper_setting")),
    Column("here setting", raw("here_setting")),
    Column("source", raw("source")),
)


def paper_vs_here(res: Results) -> Table:
    """The `paper_vs_here` table."""
    title = "The paper's numbers vs this store"
    return Table("paper_vs_here", title, paper_vs_here_frame(res), PAPER_COLUMNS)

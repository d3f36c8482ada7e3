"""Shared plotting parts of the figures: style, panel layout, setting choice, error bars,
SGD/SAM reference lines, "k of n cells" titles. matplotlib `Figure` objects only: no pyplot and no
backend choice (a notebook keeps its own; `rstsweep figures` picks Agg); no torch, no ray.

Panels: one column per dataset (CIFAR-10 left, CIFAR-100 right, then any other), one row per
model. Error bars/bands are the std over seeds (none for a single seed).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rstsweep.analysis.results import (
    DATASET_ORDER,
    MODEL_ORDER,
    Results,
    display_dataset,
    display_model,
    ordered,
)
from rstsweep.core.format import format_share

FORMATS = ("png", "pdf", "svg")
STYLE = {
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "legend.fontsize": 8,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "lines.linewidth": 1.6,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "savefig.dpi": 130,
}
FAMILY_COLORS = {
    "constant": "tab:blue",
    "piecewise": "tab:orange",
    "linear": "tab:green",
    "cos1": "tab:purple",
    "cos2": "tab:pink",
    "sin1": "tab:brown",
    "sin2": "tab:olive",
}
SGD_STYLE = {"color": "black", "marker": "s"}
SAM_STYLE = {"color": "tab:red", "marker": "D"}
Note = Callable[[str], None]


def tagged_sweeps(res: Results, number: int, note: Note) -> list[str] | None:
    """The store's sweeps tagged `figure: "Fig. <number>"`; None (and a note) if there are none."""
    sweeps = res.tagged(figure=f"Fig. {number}")
    if not sweeps:
        note(f"figure {number} skipped: no sweep tagged 'Fig. {number}' in store")
        return None
    return sweeps


def no_finished(number: int, sweeps: list[str], note: Note) -> None:
    """The note of a figure whose sweeps have no finished cells yet."""
    note(f"figure {number} skipped: sweep {', '.join(sweeps)} has no finished cells")


def progress_title(
    res: Results, sweeps: list[str], number: int | str, title: str, note: Note
) -> str:
    """`title`, with "[partial: k of n cells]" (and a note) when `sweeps` are not all done."""
    done, total = res.progress(sweeps)
    if done < total:
        what = f"sweep {', '.join(sweeps)}" if len(sweeps) <= 3 else "the store"
        note(f"figure {number}: {what} is partial ({format_share(done, total)})")
        return f"{title}  [partial: {format_share(done, total)}]"
    return title


def layout(frame: pd.DataFrame) -> tuple[list[tuple[int, int, str, str]], int, int]:
    """Panel positions: one row per model (paper order), one column per dataset that model has
    (CIFAR-10 left, CIFAR-100 right, then others). Returns ([(row, col, model, dataset)],
    n_rows, n_cols); a model with fewer datasets leaves its trailing columns empty."""
    panels = []
    for r, model in enumerate(ordered(frame["model"], MODEL_ORDER)):
        datasets = ordered(frame.loc[frame["model"] == model, "dataset"], DATASET_ORDER)
        panels += [(r, c, model, dataset) for c, dataset in enumerate(datasets)]
    n_rows = 1 + max((p[0] for p in panels), default=0)
    n_cols = 1 + max((p[1] for p in panels), default=0)
    return panels, n_rows, n_cols


def panel_grid(frame: pd.DataFrame, width: float, height: float = 3.4):
    """A constrained-layout figure with the `layout` axes; yields (ax, model, dataset)."""
    panels, n_rows, n_cols = layout(frame)
    fig = Figure(figsize=(width * n_cols, height * n_rows + 0.7), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    used = {(r, c) for r, c, _, _ in panels}
    for (r, c), ax in np.ndenumerate(axes):
        if (r, c) not in used:
            ax.set_visible(False)
    return fig, [(axes[r][c], model, dataset) for r, c, model, dataset in panels]


def pick_setting(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of one setting (a store may hold a demo and a ci run of the same model)."""
    if frame.empty:
        return frame
    # most seeds run, then most epochs: the demo run wins over a quick ci run of the same model
    weight = frame.groupby("setting").agg(seeds=("n_seeds", "sum"), epochs=("epochs", "max"))
    best = weight.sort_values(["seeds", "epochs"], ascending=False).index[0]
    return frame[frame["setting"] == best]


def panel_rows(frame: pd.DataFrame, model: str, dataset: str) -> pd.DataFrame:
    rows = frame[(frame["model"] == model) & (frame["dataset"] == dataset)]
    return pick_setting(rows)


def pct(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=float) * 100.0


def std(series: pd.Series) -> np.ndarray:
    """Std over seeds for error bars: NaN (one seed) draws no bar."""
    return np.nan_to_num(series.to_numpy(dtype=float), nan=0.0)


def seeds_label(rows: pd.DataFrame) -> str:
    """What the error bars are: "mean ± std over n seeds" (or a single seed, no spread)."""
    n = int(rows["n_seeds"].max()) if len(rows) else 0
    return "1 seed (no spread)" if n <= 1 else f"mean ± std over {n} seeds"


def endpoint_lines(ax, ends: pd.DataFrame) -> None:
    """Horizontal SGD / SAM reference lines with their ± std bands."""
    for role, style, name in (("sgd", SGD_STYLE, "SGD"), ("sam", SAM_STYLE, "SAM")):
        row = ends[ends["role"] == role]
        if row.empty:
            continue
        mean = float(row["test_error_mean"].iloc[0]) * 100
        std = float(np.nan_to_num(row["test_error_std"].iloc[0])) * 100
        ax.axhline(mean, color=style["color"], ls="--", lw=1.1, label=f"{name} {mean:.2f}%")
        if std > 0:
            ax.axhspan(mean - std, mean + std, color=style["color"], alpha=0.08, lw=0)


def label_panel(ax, model: str, dataset: str, xlabel: str, ylabel: str = "test error (%)"):
    ax.set_title(f"{display_model(model)} · {display_dataset(dataset)}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def empty(ax, text: str = "no finished cells") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="gray")

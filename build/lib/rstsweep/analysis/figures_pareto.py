"""The Pareto view: test error vs realized extra compute for every case in the store, every
schedule family and policy on one plot (mean ± std over seeds, one marker per family), the Pareto
front drawn as a staircase and its points labelled; one panel per model × dataset (the panel's
dominant setting). Drawn only when the store holds at least two families (`pareto.has_pareto_view`);
with one family it would repeat Figure 1, so it is left out without a note.
"""

from __future__ import annotations

import itertools

import pandas as pd
from matplotlib.figure import Figure

from rstsweep.analysis.pareto import has_pareto_view, pareto_points
from rstsweep.analysis.plotting import (
    FAMILY_COLORS,
    SAM_STYLE,
    SGD_STYLE,
    Note,
    label_panel,
    panel_grid,
    pct,
    pick_setting,
    progress_title,
    seeds_label,
    std,
)
from rstsweep.analysis.results import Results, ordered

_MARKERS = ("o", "^", "v", "P", "X", "*", "<", ">", "h", "p", "d")
_COLORS = ("tab:gray", "tab:cyan", "gold", "navy", "maroon", "teal")


def family_styles(families: list[str]) -> dict[str, dict[str, str]]:
    """Colour and marker of each legend family: SGD and SAM as in every figure, the schedule
    families in their usual colours, anything else (policies, new families) cycled."""
    styles = {"SGD": dict(SGD_STYLE), "SAM": dict(SAM_STYLE)}
    markers, colors = itertools.cycle(_MARKERS), itertools.cycle(_COLORS)
    for family in families:
        if family not in styles:
            color = FAMILY_COLORS.get(family) or next(colors)
            styles[family] = {"color": color, "marker": next(markers)}
    return styles


def figure_pareto(res: Results, note: Note) -> Figure | None:
    if not has_pareto_view(res):
        return None
    points = pareto_points(res)
    fams = ordered(points["marker"], ("SGD", "SAM", *FAMILY_COLORS))
    styles = family_styles(fams)
    fig, panels = panel_grid(points, width=6.0, height=4.6)
    for ax, model, dataset in panels:
        rows = points[(points["model"] == model) & (points["dataset"] == dataset)]
        _pareto_panel(ax, pick_setting(rows), styles, model, dataset)
    title = "Test error vs realized extra compute: every case, Pareto front labelled"
    fig.suptitle(progress_title(res, res.sweeps, "pareto", title, note))
    return fig


def _pareto_panel(ax, rows: pd.DataFrame, styles: dict, model: str, dataset: str) -> None:
    label_panel(ax, model, dataset, "realized extra compute (extra passes per step; SAM = 1)")
    for family in ordered(rows["marker"], tuple(styles)):
        f = rows[rows["marker"] == family]
        ax.errorbar(
            f["realized_extra_mean"],
            pct(f["test_error_mean"]),
            xerr=std(f["realized_extra_std"]),
            yerr=100 * std(f["test_error_std"]),
            fmt=styles[family]["marker"],
            color=styles[family]["color"],
            ms=5,
            capsize=2,
            alpha=0.8,
            label=f"{family} ({len(f)})",
        )
    front = rows[rows["on_front"]].sort_values("realized_extra_mean")
    x, y = front["realized_extra_mean"].to_numpy(), pct(front["test_error_mean"])
    ax.step(x, y, where="post", color="black", lw=1.0, alpha=0.7, label="Pareto front")
    for i, (xi, yi, text) in enumerate(zip(x, y, front["point"], strict=True)):
        ax.annotate(
            text,
            (xi, yi),
            textcoords="offset points",
            xytext=(5, 6 if i % 2 == 0 else -11),  # alternate above/below: neighbours overlap less
            fontsize=6.5,
        )
    ax.text(0.02, 0.02, seeds_label(rows), transform=ax.transAxes, fontsize=7, color="gray")
    ax.legend(loc="upper right", fontsize=7)

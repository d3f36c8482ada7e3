"""Figures 1-3 of Zhao et al.: test error (and cost) against the expected extra passes Δη.

    figure1  constant family: (A) p(t), (B) realized Δη vs extra wall time, (C) error vs Δη
    figure2  piecewise groups 1-3 and linear groups 1-2 (group 3 vs a_p, linear 2 vs b_l)
    figure3  error vs Δη for every schedule case (SAM branch, α = 1), coloured by family
Figures 1 and 2 draw the sweeps tagged `figure: "Fig. 1"` / `"Fig. 2"` in sweeps.yaml; a Fig. 2
cell's group is its stored group number. Figure 3 summarises every case in the store.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rstsweep.analysis.plotting import (
    FAMILY_COLORS,
    SAM_STYLE,
    SGD_STYLE,
    Note,
    empty,
    endpoint_lines,
    label_panel,
    layout,
    no_finished,
    panel_grid,
    panel_rows,
    pct,
    progress_title,
    seeds_label,
    std,
    tagged_sweeps,
)
from rstsweep.analysis.results import GROUPS, Results, ordered


def figure1(res: Results, note: Note) -> Figure | None:
    sweeps = tagged_sweeps(res, 1, note)
    if sweeps is None:
        return None
    cases = res.sweep_cases(sweeps)
    rst = cases[(cases["role"] == "rst") & (cases["family"] == "constant")]
    ends = res.endpoints(cases["setting"].unique())
    frame = pd.concat([rst, ends], ignore_index=True)
    if frame.empty:
        no_finished(1, sweeps, note)
        return None
    panels, n_rows, n_cols = layout(frame)
    fig = Figure(figsize=(3.9 * (1 + 2 * n_cols) + 1.0, 3.4 * n_rows + 0.7), layout="constrained")
    grid = fig.add_gridspec(n_rows, 1 + 2 * n_cols)
    _schedules_panel(fig.add_subplot(grid[:, 0]), rst)
    for r, c, model, dataset in panels:
        rows = panel_rows(frame, model, dataset)
        _time_panel(fig.add_subplot(grid[r, 1 + c]), rows, model, dataset)
        _error_panel(fig.add_subplot(grid[r, 1 + n_cols + c]), rows, model, dataset)
    title = "Figure 1: constant scheduling p(t) = a_c — (A) schedules, (B) cost, (C) test error"
    fig.suptitle(progress_title(res, sweeps, 1, title, note))
    return fig


def _schedules_panel(ax, rst: pd.DataFrame) -> None:
    from rstsweep.schedules import parse

    tau = np.linspace(0.0, 1.0, 201)[:-1]
    specs = rst.drop_duplicates("schedule").sort_values("param_a")["schedule"].tolist()
    colors = matplotlib.colormaps["viridis"](np.linspace(0.1, 0.9, max(1, len(specs))))
    ax.plot(tau, np.ones_like(tau), color=SAM_STYLE["color"], ls="--", label="SAM (p = 1)")
    for spec, color in zip(specs, colors, strict=False):
        schedule = parse(spec)
        p = np.broadcast_to(np.asarray(schedule.p(tau), dtype=float), tau.shape)
        ax.plot(tau, p, color=color, label=f"a_c = {schedule.param_a:g}")
    ax.plot(tau, np.zeros_like(tau), color=SGD_STYLE["color"], ls="--", label="SGD (p = 0)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel("τ = t / T")
    ax.set_ylabel("p(τ)")
    ax.set_title("(A) schedules p(t)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)


def _time_panel(ax, rows: pd.DataFrame, model: str, dataset: str) -> None:
    label_panel(ax, model, dataset, "realized Δη", "extra wall time / SGD time")
    ax.set_title(f"(B) {ax.get_title()}")
    ax.plot([0, 1], [0, 1], color="gray", ls=":", lw=1, label="x = y")
    data = rows.dropna(subset=["extra_time_mean"]).sort_values("realized_extra_mean")
    if data.empty:
        empty(ax, "no SGD cell to compare with")
        return
    ax.errorbar(
        data["realized_extra_mean"],
        data["extra_time_mean"],
        xerr=std(data["realized_extra_std"]),
        yerr=std(data["extra_time_std"]),
        fmt="o-",
        color=FAMILY_COLORS["constant"],
        ms=4,
        capsize=2,
        label=seeds_label(data),
    )
    ax.legend(loc="upper left")


def _error_panel(ax, rows: pd.DataFrame, model: str, dataset: str) -> None:
    label_panel(ax, model, dataset, "Δη (expected extra passes)")
    ax.set_title(f"(C) {ax.get_title()}")
    data = rows.dropna(subset=["test_error_mean"]).sort_values("expected_extra")
    if data.empty:
        empty(ax)
        return
    x, y, s = data["expected_extra"], pct(data["test_error_mean"]), std(data["test_error_std"])
    ax.plot(x, y, color=FAMILY_COLORS["constant"], lw=1.2)
    ax.fill_between(x, y - 100 * s, y + 100 * s, color=FAMILY_COLORS["constant"], alpha=0.15)
    times = data["train_time_s_mean"].to_numpy(dtype=float)
    size = 15 + 120 * np.nan_to_num(times / np.nanmax(times)) if np.isfinite(times).any() else 30
    colors = np.where(
        data["role"] == "sgd",
        SGD_STYLE["color"],
        np.where(data["role"] == "sam", SAM_STYLE["color"], FAMILY_COLORS["constant"]),
    )
    ax.scatter(x, y, s=size, c=colors, zorder=3, edgecolors="white", linewidths=0.5)
    for role, name in (("sgd", "SGD"), ("sam", "SAM")):
        end = data[data["role"] == role]
        if len(end):
            ax.annotate(
                name,
                (end["expected_extra"].iloc[0], pct(end["test_error_mean"])[0]),
                textcoords="offset points",
                xytext=(4, 6),
                fontsize=8,
            )
    ax.text(
        0.98,
        0.96,
        "marker area ∝ wall time",
        transform=ax.transAxes,
        ha="right",
        va="top",
        fontsize=7,
        color="gray",
    )


# ----------------------------------------------------------------------------- figure 2


def _group_x(rows: pd.DataFrame, key: str) -> pd.Series:
    """The x-axis of a Fig. 2 group: a_p for piecewise 3, b_l for linear 2 (Δη is ½ there for
    every cell), Δη otherwise."""
    if key == "piecewise-3":
        return rows["param_a"]
    if key == "linear-2":
        return rows["param_b"]
    return rows["expected_extra"]


def figure2(res: Results, note: Note) -> Figure | None:
    sweeps = tagged_sweeps(res, 2, note)
    if sweeps is None:
        return None
    cases = res.sweep_cases(sweeps)
    rst = cases[(cases["role"] == "rst") & cases["gkey"].notna()]
    if rst.empty:
        no_finished(2, sweeps, note)
        return None
    ends = res.endpoints(rst["setting"].unique())
    fig, panels = panel_grid(rst, width=5.0)
    for ax, model, dataset in panels:
        _groups_panel(ax, panel_rows(rst, model, dataset), ends, model, dataset)
    title = "Figure 2: piecewise and linear schedules"
    fig.suptitle(progress_title(res, sweeps, 2, title, note))
    return fig


def _groups_panel(ax, rows: pd.DataFrame, ends: pd.DataFrame, model: str, dataset: str) -> None:
    label_panel(ax, model, dataset, "Δη  ·  a_p (piecewise 3)  ·  b_l (linear 2)")
    endpoint_lines(ax, ends[ends["setting"] == rows["setting"].iloc[0]])
    for key, (name, color, marker) in GROUPS.items():
        g = rows[rows["gkey"] == key]
        g = g.assign(gx=_group_x(g, key)).sort_values("gx")
        if g.empty:
            continue
        y, s = pct(g["test_error_mean"]), 100 * std(g["test_error_std"])
        ax.plot(g["gx"], y, marker=marker, color=color, ms=4, label=name)
        ax.fill_between(g["gx"], y - s, y + s, color=color, alpha=0.12, lw=0)
    ax.legend(loc="upper right")


# ----------------------------------------------------------------------------- figure 3


def figure3(res: Results, note: Note) -> Figure | None:
    """Every schedule case with a SAM branch and α = 1 (RST proper), deduplicated across sweeps;
    per panel the dominant setting (so e.g. Cutout cells do not mix with basic-augment ones)."""
    if not res.sweeps:
        note("figure 3 skipped: the store has no sweeps")
        return None
    cases = res.unique_cases()
    plain = np.isclose(cases["alpha"].astype(float).fillna(1.0), 1.0)
    cases = cases[cases["algorithm"].isin(["sgd", "sam"]) & plain]
    if cases.empty:
        note("figure 3 skipped: no finished SGD/SAM/RST cells in store")
        return None
    fig, panels = panel_grid(cases, width=5.0)
    for ax, model, dataset in panels:
        _summary_panel(ax, panel_rows(cases, model, dataset), model, dataset)
    title = progress_title(res, res.sweeps, 3, "Figure 3: test error vs Δη, every case", note)
    fig.suptitle(title)
    return fig


def _summary_panel(ax, rows: pd.DataFrame, model: str, dataset: str) -> None:
    label_panel(ax, model, dataset, "Δη (expected extra passes)")
    if rows.empty:
        empty(ax)
        return
    endpoint_lines(ax, rows)
    rst = rows[rows["role"] == "rst"]
    for family in ordered(rst["family"], tuple(FAMILY_COLORS)):
        f = rst[rst["family"] == family]
        ax.errorbar(
            f["expected_extra"],
            pct(f["test_error_mean"]),
            yerr=100 * std(f["test_error_std"]),
            fmt="o",
            ms=4,
            capsize=2,
            alpha=0.85,
            color=FAMILY_COLORS.get(family, "gray"),
            label=f"{family} ({len(f)})",
        )
    for role, style in (("sgd", SGD_STYLE), ("sam", SAM_STYLE)):
        end = rows[rows["role"] == role]
        ax.scatter(end["expected_extra"], pct(end["test_error_mean"]), zorder=3, s=40, **style)
    ax.legend(loc="upper right")

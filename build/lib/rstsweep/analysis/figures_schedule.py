"""Figures 4 and 5 of Zhao et al.: the schedules' coin draws and the p × γ map.

    figure4  the trigonometric schedules with a real cell's coin draws X_t
    figure5  the p × γ_rst/ρ map of test error (G-RST)
They draw the sweeps tagged `figure: "Fig. 4"` / `"Fig. 5"` in sweeps.yaml.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rstsweep.analysis.plotting import (
    FAMILY_COLORS,
    Note,
    empty,
    label_panel,
    no_finished,
    panel_grid,
    panel_rows,
    progress_title,
    tagged_sweeps,
)
from rstsweep.analysis.results import (
    DATASET_ORDER,
    MODEL_ORDER,
    TRIG_FAMILIES,
    Results,
    display_dataset,
    display_model,
    ordered,
)
from rstsweep.store.store import draws_in


def figure4(res: Results, note: Note) -> Figure | None:
    sweeps = tagged_sweeps(res, 4, note)
    if sweeps is None:
        return None
    trials = res.joined[res.joined["sweep"].isin(sweeps) & res.joined["ok"]]
    trials = trials[trials["family"].isin(TRIG_FAMILIES)]
    if trials.empty:
        no_finished(4, sweeps, note)
        return None
    fig = Figure(figsize=(4.6 * len(TRIG_FAMILIES), 4.2), layout="constrained")
    axes = fig.subplots(1, len(TRIG_FAMILIES), squeeze=False)[0]
    for ax, family in zip(axes, TRIG_FAMILIES, strict=True):
        _draws_panel(ax, res, trials[trials["family"] == family], family)
    title = "Figure 4: trigonometric schedules p(t) with realized coin draws X_t"
    fig.suptitle(progress_title(res, sweeps, 4, title, note))
    return fig


def _first_cell(rows: pd.DataFrame) -> pd.Series | None:
    """The cell whose draws to show: first model/dataset in panel order, lowest seed."""
    if rows.empty:
        return None
    model = ordered(rows["model"], MODEL_ORDER)[0]
    rows = rows[rows["model"] == model]
    dataset = ordered(rows["dataset"], DATASET_ORDER)[0]
    return rows[rows["dataset"] == dataset].sort_values("seed").iloc[0]


def _draws_panel(ax, res: Results, rows: pd.DataFrame, family: str) -> None:
    from rstsweep.schedules import parse

    schedule = parse(family)
    tau = np.linspace(0.0, 1.0, 401)[:-1]
    ax.plot(tau, schedule.p(tau), color="black", lw=2, label="p(τ)")
    ax.set_title(f"{family}: p(τ) = {schedule.formula}")
    ax.set_xlabel("τ = t / T")
    ax.set_ylim(-0.2, 1.2)
    ax.set_yticks([0, 0.5, 1])
    cell = _first_cell(rows)
    draws = draws_in(res.draws, cell["cell_id"]) if cell is not None else None
    if draws is None or draws.size == 0:
        empty(ax, "no finished cell with draws")
        return
    T = draws.size
    rng = np.random.default_rng(0)  # fixed jitter/subsample: the figure is reproducible
    idx = np.sort(rng.choice(T, size=min(T, 1500), replace=False))
    x = draws[idx]
    y = np.where(x, 1.1, -0.1) + rng.uniform(-0.05, 0.05, idx.size)
    color = FAMILY_COLORS[family]
    ax.scatter(idx / T, y, s=2, alpha=0.5, color=color, lw=0, label="X_t (jittered)")
    windows = min(40, T)
    edges = np.linspace(0, T, windows + 1).astype(int)
    rate = np.add.reduceat(draws.astype(float), edges[:-1]) / np.diff(edges)
    ax.stairs(rate, edges / T, color=color, lw=1.4, baseline=None, label="realized rate")
    ax.set_title(
        f"{family}: p(τ) = {schedule.formula}\n{display_model(cell['model'])}, "
        f"{display_dataset(cell['dataset'])}, seed {cell['seed']}, T={T}, Δη={draws.mean():.3f}",
        fontsize=9,
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=7, frameon=False)


# ----------------------------------------------------------------------------- figure 5


def figure5(res: Results, note: Note) -> Figure | None:
    sweeps = tagged_sweeps(res, 5, note)
    if sweeps is None:
        return None
    cases = res.sweep_cases(sweeps)
    cases = cases[cases["role"] != "sgd"].dropna(subset=["test_error_mean"])
    if cases.empty:
        no_finished(5, sweeps, note)
        return None
    p = cases["param_a"].where(cases["family"] == "constant", cases["expected_extra"])
    gamma = p * cases["alpha"].astype(float)  # γ_rst / ρ = p · α
    cases = cases.assign(p=p.round(4), gamma=gamma.round(4))
    fig, panels = panel_grid(cases, width=5.2)
    for ax, model, dataset in panels:
        _map_panel(fig, ax, panel_rows(cases, model, dataset), model, dataset)
    title = "Figure 5: test error (%) over p × γ_rst/ρ (G-RST, α = (γ_rst/ρ)/p)"
    fig.suptitle(progress_title(res, sweeps, 5, title, note))
    return fig


def _map_panel(fig: Figure, ax, rows: pd.DataFrame, model: str, dataset: str) -> None:
    label_panel(ax, model, dataset, "γ_rst / ρ", "p")
    ax.grid(False)
    if rows.empty:
        empty(ax)
        return
    grid = rows.pivot_table(index="p", columns="gamma", values="test_error_mean", aggfunc="mean")
    z = grid.to_numpy(dtype=float) * 100
    cmap = matplotlib.colormaps["viridis_r"].with_extremes(bad="lightgray")
    image = ax.imshow(np.ma.masked_invalid(z), origin="lower", aspect="auto", cmap=cmap)
    ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns], rotation=45)
    ax.set_yticks(range(grid.shape[0]), [f"{v:g}" for v in grid.index])
    if z.size <= 120:  # annotate readable grids only
        for (i, j), v in np.ndenumerate(z):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6, color="white")
    fig.colorbar(image, ax=ax, label="test error (%)")

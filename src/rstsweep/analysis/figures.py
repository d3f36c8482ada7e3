"""Figures 1-5 of the paper from a result store (matplotlib, Agg backend; no torch, no ray).

`make_figures(store, out_dir, fmt)` writes one file per figure whose sweep is in the store:
    figure1  constant family: (A) p(t), (B) realized Δη vs extra wall time, (C) error vs Δη
    figure2  piecewise groups 1-3 and linear groups 1-2 (group 3 vs a_p, linear 2 vs b_l)
    figure3  error vs Δη for every schedule case (SAM branch, α = 1), coloured by family
    figure4  the trigonometric schedules with a real cell's coin draws X_t
    figure5  the p × γ_rst/ρ map of test error (p-gamma sweep)
Panels: one column per dataset (CIFAR-10 left, CIFAR-100 right, then any other), one row per
model. Error bars/bands are the std over seeds (none for a single seed). A missing sweep skips
its figure with a one-line note; a partly finished one is drawn from the done cells and its
title says "k of n cells".
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a GUI backend (tests, servers, Ray workers)

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rstsweep.analysis.results import (
    DATASET_ORDER,
    GROUPS,
    MODEL_ORDER,
    TRIG_FAMILIES,
    Results,
    display_dataset,
    display_model,
    load,
    ordered,
)
from rstsweep.errors import RstError

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


def _stderr_note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def make_figures(
    store: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    fmt: str = "png",
    note: Note | None = None,
    results: Results | None = None,
) -> list[Path]:
    """Render every figure the store can feed into `out_dir` (created); returns the paths written.

    `note` receives one line per skipped or partial figure (default: printed to stderr).
    """
    if fmt not in FORMATS:
        raise RstError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    note = note or _stderr_note
    res = results if results is not None else load(store)
    out = Path(out_dir)
    paths = []
    with matplotlib.rc_context(STYLE):
        for number, draw in FIGURES.items():
            fig = draw(res, note)
            if fig is None:
                continue
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"figure{number}.{fmt}"
            fig.savefig(path, format=fmt)
            paths.append(path)
    return paths


# ----------------------------------------------------------------------------- helpers


def _progress_title(res: Results, sweeps: list[str], number: int, title: str, note: Note) -> str:
    done, total = res.progress(sweeps)
    if done < total:
        what = f"sweep {', '.join(sweeps)}" if len(sweeps) <= 3 else "the store"
        note(f"figure {number}: {what} is partial ({done} of {total} cells)")
        return f"{title}  [partial: {done} of {total} cells]"
    return title


def _layout(frame: pd.DataFrame) -> tuple[list[tuple[int, int, str, str]], int, int]:
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


def _panel_grid(frame: pd.DataFrame, width: float, height: float = 3.4):
    """A constrained-layout figure with the `_layout` axes; yields (ax, model, dataset)."""
    panels, n_rows, n_cols = _layout(frame)
    fig = Figure(figsize=(width * n_cols, height * n_rows + 0.7), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    used = {(r, c) for r, c, _, _ in panels}
    for (r, c), ax in np.ndenumerate(axes):
        if (r, c) not in used:
            ax.set_visible(False)
    return fig, [(axes[r][c], model, dataset) for r, c, model, dataset in panels]


def _pick_setting(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of one setting (a store may hold a demo and a ci run of the same model)."""
    if frame.empty:
        return frame
    # most seeds run, then most epochs: the demo run wins over a quick ci run of the same model
    weight = frame.groupby("setting").agg(seeds=("n_seeds", "sum"), epochs=("epochs", "max"))
    best = weight.sort_values(["seeds", "epochs"], ascending=False).index[0]
    return frame[frame["setting"] == best]


def _panel_rows(frame: pd.DataFrame, model: str, dataset: str) -> pd.DataFrame:
    rows = frame[(frame["model"] == model) & (frame["dataset"] == dataset)]
    return _pick_setting(rows)


def _pct(series: pd.Series) -> np.ndarray:
    return series.to_numpy(dtype=float) * 100.0


def _std(series: pd.Series) -> np.ndarray:
    """Std over seeds for error bars: NaN (one seed) draws no bar."""
    return np.nan_to_num(series.to_numpy(dtype=float), nan=0.0)


def _seeds_label(rows: pd.DataFrame) -> str:
    n = int(rows["n_seeds"].max()) if len(rows) else 0
    return "1 seed (no spread)" if n <= 1 else f"mean ± std over {n} seeds"


def _endpoint_lines(ax, ends: pd.DataFrame) -> None:
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


def _label_panel(ax, model: str, dataset: str, xlabel: str, ylabel: str = "test error (%)"):
    ax.set_title(f"{display_model(model)} · {display_dataset(dataset)}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)


def _empty(ax, text: str = "no finished cells") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="gray")


# ----------------------------------------------------------------------------- figure 1


def figure1(res: Results, note: Note) -> Figure | None:
    sweeps = res.has_sweep(["constant"])
    if not sweeps:
        note("figure 1 skipped: sweep 'constant' not in store")
        return None
    cases = res.sweep_cases(sweeps)
    rst = cases[(cases["role"] == "rst") & (cases["family"] == "constant")]
    ends = res.endpoints(cases["setting"].unique())
    frame = pd.concat([rst, ends], ignore_index=True)
    if frame.empty:
        note("figure 1 skipped: sweep 'constant' has no finished cells")
        return None
    panels, n_rows, n_cols = _layout(frame)
    fig = Figure(figsize=(3.9 * (1 + 2 * n_cols) + 1.0, 3.4 * n_rows + 0.7), layout="constrained")
    grid = fig.add_gridspec(n_rows, 1 + 2 * n_cols)
    _schedules_panel(fig.add_subplot(grid[:, 0]), rst)
    for r, c, model, dataset in panels:
        rows = _panel_rows(frame, model, dataset)
        _time_panel(fig.add_subplot(grid[r, 1 + c]), rows, model, dataset)
        _error_panel(fig.add_subplot(grid[r, 1 + n_cols + c]), rows, model, dataset)
    title = "Figure 1: constant scheduling p(t) = a_c — (A) schedules, (B) cost, (C) test error"
    fig.suptitle(_progress_title(res, sweeps, 1, title, note))
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
    _label_panel(ax, model, dataset, "realized Δη", "extra wall time / SGD time")
    ax.set_title(f"(B) {ax.get_title()}")
    ax.plot([0, 1], [0, 1], color="gray", ls=":", lw=1, label="x = y")
    data = rows.dropna(subset=["extra_time_mean"]).sort_values("realized_extra_mean")
    if data.empty:
        _empty(ax, "no SGD cell to compare with")
        return
    ax.errorbar(
        data["realized_extra_mean"],
        data["extra_time_mean"],
        xerr=_std(data["realized_extra_std"]),
        yerr=_std(data["extra_time_std"]),
        fmt="o-",
        color=FAMILY_COLORS["constant"],
        ms=4,
        capsize=2,
        label=_seeds_label(data),
    )
    ax.legend(loc="upper left")


def _error_panel(ax, rows: pd.DataFrame, model: str, dataset: str) -> None:
    _label_panel(ax, model, dataset, "Δη (expected extra passes)")
    ax.set_title(f"(C) {ax.get_title()}")
    data = rows.dropna(subset=["test_error_mean"]).sort_values("expected_extra")
    if data.empty:
        _empty(ax)
        return
    x, y, s = data["expected_extra"], _pct(data["test_error_mean"]), _std(data["test_error_std"])
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
                (end["expected_extra"].iloc[0], _pct(end["test_error_mean"])[0]),
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


def _fig2_sweeps(res: Results) -> list[str]:
    return [s for s in res.sweeps if re.match(r"(piecewise|linear)", s)]


def figure2(res: Results, note: Note) -> Figure | None:
    sweeps = _fig2_sweeps(res)
    if not sweeps:
        note("figure 2 skipped: no piecewise-*/linear-* sweep in store")
        return None
    cases = res.sweep_cases(sweeps)
    rst = cases[(cases["role"] == "rst") & cases["gkey"].notna()]
    if rst.empty:
        note("figure 2 skipped: its sweeps have no finished piecewise/linear cells")
        return None
    ends = res.endpoints(rst["setting"].unique())
    fig, panels = _panel_grid(rst, width=5.0)
    for ax, model, dataset in panels:
        _groups_panel(ax, _panel_rows(rst, model, dataset), ends, model, dataset)
    title = "Figure 2: piecewise and linear schedules"
    fig.suptitle(_progress_title(res, sweeps, 2, title, note))
    return fig


def _groups_panel(ax, rows: pd.DataFrame, ends: pd.DataFrame, model: str, dataset: str) -> None:
    _label_panel(ax, model, dataset, "Δη  ·  a_p (piecewise 3)  ·  b_l (linear 2)")
    _endpoint_lines(ax, ends[ends["setting"] == rows["setting"].iloc[0]])
    for key, (name, color, marker) in GROUPS.items():
        g = rows[rows["gkey"] == key]
        g = g.assign(gx=_group_x(g, key)).sort_values("gx")
        if g.empty:
            continue
        y, s = _pct(g["test_error_mean"]), 100 * _std(g["test_error_std"])
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
    fig, panels = _panel_grid(cases, width=5.0)
    for ax, model, dataset in panels:
        _summary_panel(ax, _panel_rows(cases, model, dataset), model, dataset)
    title = _progress_title(res, res.sweeps, 3, "Figure 3: test error vs Δη, every case", note)
    fig.suptitle(title)
    return fig


def _summary_panel(ax, rows: pd.DataFrame, model: str, dataset: str) -> None:
    _label_panel(ax, model, dataset, "Δη (expected extra passes)")
    if rows.empty:
        _empty(ax)
        return
    _endpoint_lines(ax, rows)
    rst = rows[rows["role"] == "rst"]
    for family in ordered(rst["family"], tuple(FAMILY_COLORS)):
        f = rst[rst["family"] == family]
        ax.errorbar(
            f["expected_extra"],
            _pct(f["test_error_mean"]),
            yerr=100 * _std(f["test_error_std"]),
            fmt="o",
            ms=4,
            capsize=2,
            alpha=0.85,
            color=FAMILY_COLORS.get(family, "gray"),
            label=f"{family} ({len(f)})",
        )
    for role, style in (("sgd", SGD_STYLE), ("sam", SAM_STYLE)):
        end = rows[rows["role"] == role]
        ax.scatter(end["expected_extra"], _pct(end["test_error_mean"]), zorder=3, s=40, **style)
    ax.legend(loc="upper right")


# ----------------------------------------------------------------------------- figure 4


def figure4(res: Results, note: Note) -> Figure | None:
    sweeps = res.has_sweep(["trigonometric"])
    if not sweeps:
        note("figure 4 skipped: sweep 'trigonometric' not in store")
        return None
    trials = res.joined[res.joined["sweep"].isin(sweeps) & res.joined["ok"]]
    trials = trials[trials["family"].isin(TRIG_FAMILIES)]
    if trials.empty:
        note("figure 4 skipped: sweep 'trigonometric' has no finished cells")
        return None
    fig = Figure(figsize=(4.6 * len(TRIG_FAMILIES), 4.2), layout="constrained")
    axes = fig.subplots(1, len(TRIG_FAMILIES), squeeze=False)[0]
    for ax, family in zip(axes, TRIG_FAMILIES, strict=True):
        _draws_panel(ax, res, trials[trials["family"] == family], family)
    title = "Figure 4: trigonometric schedules p(t) with realized coin draws X_t"
    fig.suptitle(_progress_title(res, sweeps, 4, title, note))
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
    draws = res.draws_of(cell["cell_id"]) if cell is not None else None
    if draws is None or draws.size == 0:
        _empty(ax, "no finished cell with draws")
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
    sweeps = res.has_sweep(["p-gamma"])
    if not sweeps:
        note("figure 5 skipped: sweep 'p-gamma' not in store")
        return None
    cases = res.sweep_cases(sweeps)
    cases = cases[cases["role"] != "sgd"].dropna(subset=["test_error_mean"])
    if cases.empty:
        note("figure 5 skipped: sweep 'p-gamma' has no finished cells")
        return None
    p = cases["param_a"].where(cases["family"] == "constant", cases["expected_extra"])
    gamma = p * cases["alpha"].astype(float)  # γ_rst / ρ = p · α
    cases = cases.assign(p=p.round(4), gamma=gamma.round(4))
    fig, panels = _panel_grid(cases, width=5.2)
    for ax, model, dataset in panels:
        _map_panel(fig, ax, _panel_rows(cases, model, dataset), model, dataset)
    title = "Figure 5: test error (%) over p × γ_rst/ρ (G-RST, α = (γ_rst/ρ)/p)"
    fig.suptitle(_progress_title(res, sweeps, 5, title, note))
    return fig


def _map_panel(fig: Figure, ax, rows: pd.DataFrame, model: str, dataset: str) -> None:
    _label_panel(ax, model, dataset, "γ_rst / ρ", "p")
    ax.grid(False)
    if rows.empty:
        _empty(ax)
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


FIGURES: dict[int, Callable[[Results, Note], Figure | None]] = {
    1: figure1,
    2: figure2,
    3: figure3,
    4: figure4,
    5: figure5,
}

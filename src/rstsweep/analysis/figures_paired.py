"""The paired-differences figure: every case's test error minus that of the SGD and of the SAM
cell of the same setting and seed, against Δη, with 95 % intervals (`paired`); a filled marker
where the interval excludes zero, a hollow one where it does not. One panel per model × dataset
(the panel's dominant setting). Drawn when some case has a paired difference over ≥ 2 seeds;
left out without a note otherwise (one seed has no interval to show).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from rstsweep.analysis.paired import paired_frame
from rstsweep.analysis.plotting import (
    SAM_STYLE,
    SGD_STYLE,
    Note,
    label_panel,
    panel_grid,
    pick_setting,
    progress_title,
)
from rstsweep.analysis.results import Results

_REFS = (("sgd", "SGD", SGD_STYLE, -0.008), ("sam", "SAM", SAM_STYLE, 0.008))


def paired_points(res: Results) -> pd.DataFrame:
    """The non-endpoint cases (one row per case_id) with their `vs_sam_*` / `vs_sgd_*` columns."""
    cases = res.unique_cases()
    paired = paired_frame(res.trials, res.cases)
    rst = cases[cases["role"] == "rst"]
    return rst.join(paired, on="case_id").reset_index(drop=True)


def figure_paired(res: Results, note: Note) -> Figure | None:
    points = paired_points(res)
    if points.empty or not (points[["vs_sgd_n", "vs_sam_n"]] >= 2).any(axis=None):
        return None
    fig, panels = panel_grid(points, width=6.0, height=4.2)
    for ax, model, dataset in panels:
        rows = points[(points["model"] == model) & (points["dataset"] == dataset)]
        _panel(ax, pick_setting(rows), model, dataset)
    title = "Test error minus SGD / SAM of the same seed (95 % intervals)"
    fig.suptitle(progress_title(res, res.sweeps, "paired", title, note))
    return fig


def _panel(ax, rows: pd.DataFrame, model: str, dataset: str) -> None:
    label_panel(ax, model, dataset, "Δη (expected extra passes)", "Δ test error (points)")
    ax.axhline(0.0, color="gray", lw=0.9)
    for ref, name, style, shift in _REFS:
        x = rows["expected_extra"].to_numpy(float) + shift  # side by side, not on top
        mean, lo, hi = (rows[f"vs_{ref}_{k}"].to_numpy(float) * 100 for k in ("mean", "lo", "hi"))
        resolved = rows[f"vs_{ref}_resolved"].to_numpy(bool)
        yerr = np.nan_to_num(np.vstack([mean - lo, hi - mean]), nan=0.0)
        ax.errorbar(x, mean, yerr=yerr, fmt="none", ecolor=style["color"], capsize=2, alpha=0.7)
        for filled in (True, False):
            pick = resolved == filled
            if not pick.any():
                continue
            ax.plot(
                x[pick],
                mean[pick],
                ls="none",
                marker=style["marker"],
                color=style["color"],
                mfc=style["color"] if filled else "white",
                label=f"vs {name}" + (" (interval excludes 0)" if filled else ""),
            )
    n = int(np.nanmax(rows[["vs_sgd_n", "vs_sam_n"]].to_numpy(float), initial=0))
    ax.text(0.02, 0.02, f"{n} paired seeds", transform=ax.transAxes, fontsize=7, color="gray")
    ax.legend(loc="best", fontsize=7)

"""The figures of a result store: Figures 1-5 of Zhao et al. and the Pareto view (matplotlib
`Figure` objects, saved without pyplot or a backend choice; no torch, no ray).

`make_figures(store, out_dir, fmt)` writes one file per figure the store can feed:
    figure1 … figure3   error and cost vs Δη (`figures_delta`)
    figure4, figure5    trigonometric coin draws, the p × γ map (`figures_schedule`)
    pareto              test error vs realized extra compute, every case (`figures_pareto`)
    paired              each case minus SGD and SAM of the same seed, 95 % intervals
A figure finds its sweeps by the sweeps.yaml tag recorded with the cells (`figure: "Fig. 1"`, …).
A missing sweep skips its figure with a one-line note; a partly finished one is drawn from the
done cells and its title says "k of n cells".
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from rstsweep.analysis.figures_delta import figure1, figure2, figure3
from rstsweep.analysis.figures_paired import figure_paired
from rstsweep.analysis.figures_pareto import figure_pareto
from rstsweep.analysis.figures_schedule import figure4, figure5
from rstsweep.analysis.pareto import check_cost
from rstsweep.analysis.plotting import FORMATS, STYLE, Note
from rstsweep.analysis.results import Results, load
from rstsweep.errors import RstError

FIGURES: dict[str, Callable[[Results, Note], Figure | None]] = {
    "figure1": figure1,
    "figure2": figure2,
    "figure3": figure3,
    "figure4": figure4,
    "figure5": figure5,
    "pareto": figure_pareto,
    "paired": figure_paired,
}


def stderr_note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def make_figures(
    store: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    fmt: str = "png",
    note: Note | None = None,
    results: Results | None = None,
    cost: str = "flops",
) -> list[Path]:
    """Render every figure the store can feed into `out_dir` (created); returns the paths written.

    `note` receives one line per skipped or partial figure (default: printed to stderr);
    `cost` is the Pareto view's cost axis (flops or time, `pareto.check_cost`).
    """
    if fmt not in FORMATS:
        raise RstError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    note = note or stderr_note
    check_cost(cost)
    res = results if results is not None else load(store)
    out = Path(out_dir)
    paths = []
    with matplotlib.rc_context(STYLE):
        for name, draw in FIGURES.items():
            fig = figure_pareto(res, note, cost) if draw is figure_pareto else draw(res, note)
            if fig is None:
                continue
            out.mkdir(parents=True, exist_ok=True)
            path = out / f"{name}.{fmt}"
            fig.savefig(path, format=fmt)
            paths.append(path)
    return paths

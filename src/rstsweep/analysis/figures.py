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

import multiprocessing
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
    jobs: int = 0,
) -> list[Path]:
    """Render every figure the store can feed into `out_dir` (created); returns the paths written.

    `note` receives one line per skipped or partial figure (default: printed to stderr);
    `cost` is the Pareto view's cost axis (flops or time, `pareto.check_cost`); `jobs` is the
    number of processes drawing figures side by side (0: one per CPU, at most one per figure).
    """
    if fmt not in FORMATS:
        raise RstError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    if jobs < 0:
        raise RstError(f"--jobs: {jobs} is negative (0: one per CPU)")
    note = note or stderr_note
    check_cost(cost)
    res = results if results is not None else load(store)
    tasks = [(name, Path(out_dir), fmt, cost) for name in FIGURES]
    workers = min(jobs or os.cpu_count() or 1, len(tasks))
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        rendered = _render_in_processes(res, tasks, workers)
    else:
        rendered = [_render(res, *task) for task in tasks]
    paths = []
    for path, notes in rendered:  # in FIGURES order, whichever process drew them
        for message in notes:
            note(message)
        if path is not None:
            paths.append(path)
    return paths


def _render(
    res: Results, name: str, out: Path, fmt: str, cost: str
) -> tuple[Path | None, list[str]]:
    """Draw and save one figure; returns its path (None: skipped) and its notes."""
    notes: list[str] = []
    draw = FIGURES[name]
    with matplotlib.rc_context(STYLE):
        fig = draw(res, notes.append, cost) if draw is figure_pareto else draw(res, notes.append)
        if fig is None:
            return None, notes
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{name}.{fmt}"
        fig.savefig(path, format=fmt)
    return path, notes


# Forked workers inherit the loaded results and every imported module (no pickling, no imports):
# laying out and rasterising the figures is most of `figures`' time, and it is pure CPU work.
_FORKED: dict[str, Results] = {}


def _render_forked(task: tuple[str, Path, str, str]) -> tuple[Path | None, list[str]]:
    return _render(_FORKED["results"], *task)


def _render_in_processes(res: Results, tasks: list, workers: int) -> list:
    _FORKED["results"] = res
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(_render_forked, tasks, chunksize=1)
    finally:
        _FORKED.clear()

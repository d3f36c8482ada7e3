"""The paper's figures as matplotlib `Figure` objects, for notebooks (docs/api.md): Figures 1-5 of
Zhao et al. and the Pareto view, each from a result store (a path or URI, a `Store`, or the API's
`ResultStore`). Nothing here selects a backend or touches pyplot: the figures are built on
`matplotlib.figure.Figure`, so a Jupyter kernel keeps its own backend and shows them inline.
A figure the store cannot feed returns None and says why through `note` (default: stderr).
The drawing lives in `analysis` (`analysis.figures.FIGURES`); `rstsweep figures` writes files.
"""

from __future__ import annotations

import os

import matplotlib
from matplotlib.figure import Figure

from rstsweep.analysis.figures import FIGURES, stderr_note
from rstsweep.analysis.plotting import STYLE, Note
from rstsweep.analysis.results import Results, load
from rstsweep.api import ResultStore
from rstsweep.store.store import Store

StoreLike = str | os.PathLike[str] | Store | ResultStore | Results


def results_of(store: StoreLike) -> Results:
    """The analysis view of a store (read once; pass it to several figures as `results=`)."""
    if isinstance(store, Results):
        return store
    return load(store.store if isinstance(store, ResultStore) else store)


def draw(name: str, store: StoreLike, note: Note | None = None) -> Figure | None:
    """Figure `name` (a key of `analysis.figures.FIGURES`) of `store`, in the paper's style."""
    if name not in FIGURES:
        from rstsweep.errors import RstError

        raise RstError(f"figure {name!r}: not one of {', '.join(FIGURES)}")
    with matplotlib.rc_context(STYLE):
        return FIGURES[name](results_of(store), note or stderr_note)


def figure1(store: StoreLike, note: Note | None = None) -> Figure | None:
    """Fig. 1: the constant family: p(t), realized Δη vs extra wall time, test error vs Δη."""
    return draw("figure1", store, note)


def figure2(store: StoreLike, note: Note | None = None) -> Figure | None:
    """Fig. 2: piecewise groups 1-3 and linear groups 1-2 (group 3 vs a_p, linear 2 vs b_l)."""
    return draw("figure2", store, note)


def figure3(store: StoreLike, note: Note | None = None) -> Figure | None:
    """Fig. 3: test error vs Δη for every schedule case (SAM branch, α = 1), by family."""
    return draw("figure3", store, note)


def figure4(store: StoreLike, note: Note | None = None) -> Figure | None:
    """Fig. 4: the trigonometric schedules with a real cell's coin draws X_t."""
    return draw("figure4", store, note)


def figure5(store: StoreLike, note: Note | None = None) -> Figure | None:
    """Fig. 5: the p × γ_rst/ρ map of test error (G-RST)."""
    return draw("figure5", store, note)


def pareto(store: StoreLike, note: Note | None = None) -> Figure | None:
    """Test error vs realized extra compute, every case (needs two or more schedule families)."""
    return draw("pareto", store, note)


__all__ = ["draw", "figure1", "figure2", "figure3", "figure4", "figure5", "pareto", "results_of"]

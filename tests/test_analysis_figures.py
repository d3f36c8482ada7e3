"""Figures from synthetic stores: every figure renders to a real image file, missing sweeps are
skipped with a note, partial sweeps say "k of n", and Figure 4 draws the stored coin draws."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rstsweep.analysis.figures import make_figures
from rstsweep.analysis.figures_schedule import figure4
from rstsweep.analysis.results import load
from rstsweep.errors import RstError
from rstsweep.testing.synthetic import small_store

SWEEPS_FILE = Path(__file__).resolve().parents[1] / "sweeps.yaml"
PNG = b"\x89PNG\r\n\x1a\n"
ALL = ["constant", "piecewise-1", "piecewise-3", "linear-2", "trigonometric", "p-gamma"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store")
    small_store(root, SWEEPS_FILE, sweeps=ALL, seeds=2, unfinished={"p-gamma": 0.4})
    return root


def test_every_figure_renders_and_partial_sweep_is_noted(store, tmp_path):
    notes: list[str] = []
    paths = make_figures(store, tmp_path / "figs", "png", note=notes.append)
    # constant, piecewise, linear and trigonometric families: the Pareto view is drawn too; two
    # seeds: the paired differences too
    want = [f"figure{i}.png" for i in range(1, 6)] + ["pareto.png", "paired.png"]
    assert [p.name for p in paths] == want
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 20_000, path
    cells = pd.read_parquet(store / "cells")
    ids = set(cells.loc[cells["sweep"] == "p-gamma", "cell_id"])
    done = len(ids & set(pd.read_parquet(store / "trials")["cell_id"]))
    assert f"figure 5: sweep p-gamma is partial ({done} of {len(ids)} cells)" in notes
    assert not any(n.startswith(("figure 1", "figure 2", "figure 4")) for n in notes)


def test_figures_drawn_in_processes_are_the_serial_ones(store, tmp_path):
    serial_notes: list[str] = []
    serial = make_figures(store, tmp_path / "serial", note=serial_notes.append, jobs=1)
    forked_notes: list[str] = []
    forked = make_figures(store, tmp_path / "forked", note=forked_notes.append, jobs=3)
    assert [p.name for p in forked] == [p.name for p in serial]
    assert forked_notes == serial_notes  # relayed from the workers, in figure order
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(serial, forked, strict=True))
    with pytest.raises(RstError, match="--jobs: -1 is negative"):
        make_figures(store, tmp_path / "bad", jobs=-1)


@pytest.mark.parametrize(("fmt", "magic"), [("pdf", b"%PDF"), ("svg", b"<?xml")])
def test_vector_formats(tmp_path, fmt, magic):
    store = tmp_path / "store"
    small_store(store, SWEEPS_FILE, sweeps=["constant"], datasets=["cifar10"], seeds=1)
    paths = make_figures(store, tmp_path / "out", fmt, note=lambda _: None)
    assert [p.suffix for p in paths] == [f".{fmt}", f".{fmt}"]  # figures 1 and 3
    assert all(p.read_bytes().startswith(magic) for p in paths)


def test_bad_format_is_a_user_error(store, tmp_path):
    with pytest.raises(RstError, match="--format: 'jpg' is not one of png, pdf, svg"):
        make_figures(store, tmp_path, "jpg")


def test_missing_sweeps_are_skipped_with_one_line_notes(tmp_path):
    store = tmp_path / "store"
    small_store(
        store, SWEEPS_FILE, sweeps=["constant"], models=["fastcnn"], datasets=["fashion-mnist"]
    )
    notes: list[str] = []
    paths = make_figures(store, tmp_path / "out", note=notes.append)
    # three seeds: the paired differences are drawn too
    assert [p.name for p in paths] == ["figure1.png", "figure3.png", "paired.png"]
    assert notes == [
        "figure 2 skipped: no sweep tagged 'Fig. 2' in store",
        "figure 4 skipped: no sweep tagged 'Fig. 4' in store",
        "figure 5 skipped: no sweep tagged 'Fig. 5' in store",
    ]


def test_empty_or_fresh_store_draws_nothing_and_does_not_crash(tmp_path):
    notes: list[str] = []
    assert make_figures(tmp_path, tmp_path / "out", note=notes.append) == []
    assert len(notes) == 5 and not (tmp_path / "out").exists()


def test_sweep_with_no_finished_cell_is_skipped(tmp_path):
    store = tmp_path / "store"
    unfinished = {"trigonometric": 1.0}
    small_store(store, SWEEPS_FILE, sweeps=["trigonometric"], seeds=1, unfinished=unfinished)
    notes: list[str] = []
    assert make_figures(store, tmp_path / "out", note=notes.append) == []
    assert "figure 4 skipped: sweep trigonometric has no finished cells" in notes


def test_figure4_draws_the_stored_coin_draws(store):
    res = load(store)
    fig = figure4(res, note=lambda _: None)
    trials = pd.read_parquet(store / "trials")
    draws = pd.read_parquet(store / "draws").set_index("cell_id")
    for ax in fig.axes:
        family = ax.get_title().split(":")[0]
        cells = trials[trials["schedule"] == family].sort_values(["dataset", "seed"])
        cell = cells.iloc[0]  # CIFAR-10 before CIFAR-100, lowest seed
        bits = draws.loc[cell["cell_id"], "bits"]
        x = np.unpackbits(np.frombuffer(bits, np.uint8), count=int(cell["steps"])).astype(float)
        edges = np.linspace(0, x.size, min(40, x.size) + 1).astype(int)
        want = [x[a:b].mean() for a, b in itertools.pairwise(edges)]
        stairs = next(p for p in ax.patches if hasattr(p, "get_data"))
        assert np.allclose(stairs.get_data().values, want)
        assert f"seed {cell['seed']}" in ax.get_title()

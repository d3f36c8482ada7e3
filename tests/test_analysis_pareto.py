"""The Pareto view of a hand-made store: its front and "best at budget" rows equal ones computed
here from the values we wrote, in a few lines of plain Python; the figure draws and labels them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rstsweep.analysis.figures import make_figures
from rstsweep.analysis.figures_pareto import figure_pareto
from rstsweep.analysis.pareto import BUDGETS, best_at_budget_frame, pareto_mask, pareto_points
from rstsweep.analysis.results import load
from rstsweep.analysis.tables import make_tables
from rstsweep.core.result import EpochRecord, TrainResult
from rstsweep.store.store import Store
from rstsweep.testing.synthetic import grid_cells, small_store

SWEEPS_FILE = Path(__file__).resolve().parents[1] / "sweeps.yaml"
STEPS = 20
# schedule -> (SA steps of seed 0 and seed 1, test errors of seed 0 and seed 1), chosen by hand
VALUES = {
    "constant(0)": ((0, 0), (0.30, 0.32)),
    "constant(1)": ((20, 20), (0.20, 0.22)),
    "constant(0.2)": ((4, 4), (0.29, 0.27)),
    "constant(0.5)": ((10, 12), (0.24, 0.26)),
    "constant(0.8)": ((18, 18), (0.215, 0.215)),
    "cos1": ((10, 10), (0.28, 0.30)),
    "cos2": ((16, 16), (0.235, 0.245)),
    "sin1": ((13, 13), (0.23, 0.23)),
    "sin2": ((7, 7), (0.30, 0.30)),
}
SWEEPS_YAML = """
profiles:
  hand: {seeds: [0, 1], models: [fastcnn], datasets: [fashion-mnist]}
sweeps:
  budget:
    groups:
      sgd: {algorithm: sgd, label: SGD}
      sam: {schedule: "constant(1)", label: SAM}
      constant: {grid: {a: [0.2, 0.5, 0.8]}, schedule: "constant({a})"}
      trig: {grid: {f: [cos1, cos2, sin1, sin2]}, schedule: "{f}"}
"""


def _result(cell, sa_steps: int, error: float) -> TrainResult:
    draws = np.arange(STEPS) < sa_steps
    return TrainResult(
        cell_id=cell.cell_id,
        status="ok",
        error=None,
        steps=STEPS,
        sa_steps=sa_steps,
        expected_extra=sa_steps / STEPS,
        closed_form_extra=sa_steps / STEPS,
        train_time_s=1.0 + sa_steps,
        sgd_step_s=0.05,
        sa_step_s=0.1,
        train_loss=0.1,
        train_error=0.05,
        test_loss=1.0,
        test_error=error,
        epochs=[EpochRecord(1, 0.1, 0.05, 1.0, error, 0.05, STEPS, sa_steps, 1.0 + sa_steps)],
        draws=draws,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pareto")
    (root / "sweeps.yaml").write_text(SWEEPS_YAML, encoding="utf-8")
    cells = grid_cells(root / "sweeps.yaml", "hand")
    db = Store(root / "store")
    db.record_cells(cells, "hand")
    for cell in cells:
        sa, err = VALUES[cell.config.schedule]
        seed = cell.config.seed
        db.write_result(cell, _result(cell, sa[seed], err[seed]), "hand")
    return root / "store"


def _means() -> dict[str, tuple[float, float]]:
    """schedule -> (mean realized extra compute, mean test error), from VALUES alone."""
    return {s: (sum(sa) / 2 / STEPS, sum(err) / 2) for s, (sa, err) in VALUES.items()}


def _front(points: dict[str, tuple[float, float]]) -> set[str]:
    """Points no other point dominates (≤ in both, < in one): the definition, O(n²)."""
    return {
        p
        for p, (x, y) in points.items()
        if not any(
            (qx <= x and qy <= y) and (qx < x or qy < y) for q, (qx, qy) in points.items() if q != p
        )
    }


def test_front_equals_an_independent_computation(store):
    points = pareto_points(load(store))
    assert len(points) == len(VALUES)
    ours = set(points.loc[points["on_front"], "schedule"])
    assert ours == _front(_means())
    assert ours == {"constant(0)", "constant(0.2)", "constant(0.5)", "sin1", "constant(0.8)"} | {
        "constant(1)"
    }
    row = points.set_index("schedule").loc["constant(0.5)"]
    assert row["realized_extra_mean"] == pytest.approx(0.55)
    assert row["test_error_std"] == pytest.approx(np.std([0.24, 0.26], ddof=1))


def test_best_at_budget_equals_an_independent_computation(store):
    means = _means()
    frame = best_at_budget_frame(load(store))
    assert list(frame["budget"]) == list(BUDGETS)
    for row in frame.itertuples():
        fits = {s: v for s, v in means.items() if v[0] <= row.budget}
        best = min(fits, key=lambda s: fits[s][1])
        assert row.test_error_pct_mean == pytest.approx(100 * means[best][1])
        assert row.saving_vs_sam_pct == pytest.approx(100 * (1 - means[best][0] / 1.0))
        assert row.sam_test_error_pct_mean == pytest.approx(100 * means["constant(1)"][1])
    assert list(frame["case"]) == ["SGD", "constant(0.2)", "constant(0.2)", "sin1"]
    md = make_tables(store, "md")["best_at_budget"]
    assert "| 0.75 | sin1 | sin1 | 0.650 ± 0.000 | 23.00 ± 0.00 | 21.00 ± 1.41 | 35 % | 2 |" in md
    csv = pd.read_csv(io.StringIO(make_tables(store, "csv")["best_at_budget"]))
    assert csv["saving_vs_sam_pct"].round(6).tolist() == [100.0, 80.0, 80.0, 35.0]


def test_figure_draws_the_front_and_labels_its_points(store, tmp_path):
    fig = figure_pareto(load(store), note=lambda _: None)
    (ax,) = [a for a in fig.axes if a.get_visible()]
    step = next(line for line in ax.lines if line.get_label() == "Pareto front")
    front = sorted(_front(_means()), key=lambda s: _means()[s][0])
    xs = [_means()[s][0] for s in front]
    assert list(step.get_xdata()) == pytest.approx(xs)
    assert list(step.get_ydata()) == pytest.approx([100 * _means()[s][1] for s in front])
    labels = {t.get_text() for t in ax.texts}
    assert {"SGD", "SAM", "constant(0.2)", "constant(0.5)", "constant(0.8)", "sin1"} <= labels
    assert "cos1" not in labels  # dominated: drawn, not labelled
    legend = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"SGD (1)", "SAM (1)", "constant (3)", "cos1 (1)", "sin2 (1)"} <= legend
    names = [p.name for p in make_figures(store, tmp_path, note=lambda _: None)]
    assert "pareto.png" in names


def test_one_family_store_has_no_pareto_view(tmp_path):
    small_store(tmp_path, SWEEPS_FILE, sweeps=["constant"], datasets=["cifar10"], seeds=1)
    assert "best_at_budget" not in make_tables(tmp_path, "md")
    assert figure_pareto(load(tmp_path), note=lambda _: None) is None


def test_pareto_mask_keeps_exact_duplicates_and_drops_ties_it_beats():
    x = np.array([0.0, 0.5, 0.5, 0.5, 1.0, 1.0])
    y = np.array([0.3, 0.2, 0.2, 0.25, 0.1, 0.2])
    assert pareto_mask(x, y).tolist() == [True, True, True, False, True, False]

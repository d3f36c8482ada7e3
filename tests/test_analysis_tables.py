"""Tables from a synthetic store: the numbers equal aggregates computed here from the raw Parquet
files with plain pandas; partial sweeps are flagged; single-seed stores render without a spread."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rstsweep.analysis.paper import paper_numbers
from rstsweep.analysis.tables import make_tables
from rstsweep.errors import RstError
from rstsweep.testing.synthetic import small_store

SWEEPS_FILE = Path(__file__).resolve().parents[1] / "sweeps.yaml"
SWEEPS = ["baselines", "constant", "piecewise-1", "piecewise-3", "trigonometric", "p-gamma"]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store")
    small_store(root, SWEEPS_FILE, sweeps=SWEEPS, seeds=3, unfinished={"p-gamma": 0.3})
    return root


@pytest.fixture(scope="module")
def raw(store) -> pd.DataFrame:
    """The trials rows exactly as the Parquet files hold them (no rstsweep code involved)."""
    return pd.read_parquet(store / "trials")


@pytest.fixture(scope="module")
def csv_tables(store) -> dict[str, pd.DataFrame]:
    return {k: pd.read_csv(io.StringIO(v)) for k, v in make_tables(store, "csv").items()}


def _expected(raw: pd.DataFrame, mask: pd.Series) -> dict[str, float]:
    rows = raw[mask]
    assert rows["seed"].nunique() == len(rows) == 3  # one cell per seed
    return {
        "err_mean": rows["test_error"].mean() * 100,
        "err_std": rows["test_error"].std(ddof=1) * 100,
        "time_mean": rows["train_time_s"].mean(),
        "realized": rows["realized_extra"].mean(),
    }


def test_table1_equals_plain_pandas_aggregates(raw, csv_tables):
    t1 = csv_tables["table1_baselines"]
    for dataset in ("cifar10", "cifar100"):
        for case, alg, spec in (("SGD", "sgd", "constant(0)"), ("SAM", "sam", "constant(1)")):
            mask = (raw["algorithm"] == alg) & (raw["schedule"] == spec)
            want = _expected(raw, (raw["dataset"] == dataset) & mask)
            row = t1[(t1["dataset"] == dataset) & (t1["case"] == case)]
            assert len(row) == 1
            row = row.iloc[0]
            assert row["test_error_pct_mean"] == pytest.approx(want["err_mean"], rel=1e-12)
            assert row["test_error_pct_std"] == pytest.approx(want["err_std"], rel=1e-12)
            assert row["train_time_s_mean"] == pytest.approx(want["time_mean"], rel=1e-12)
            assert row["realized_extra_mean"] == pytest.approx(want["realized"], abs=1e-12)
            assert row["n_seeds"] == 3


def test_constant_case_error_and_extra_time_vs_sgd(raw, csv_tables):
    table = csv_tables["sweep_constant"]
    cell = (raw["dataset"] == "cifar100") & (raw["schedule"] == "constant(0.5)")
    cell &= raw["algorithm"] == "sam"
    want = _expected(raw, cell)
    sgd = raw[(raw["dataset"] == "cifar100") & (raw["algorithm"] == "sgd")].set_index("seed")
    rst = raw[cell].set_index("seed")
    extra = (rst["train_time_s"] - sgd["train_time_s"]) / sgd["train_time_s"] * 100
    row = table[(table["dataset"] == "cifar100") & (table["case"] == "a_c=0.5")].iloc[0]
    assert row["test_error_pct_mean"] == pytest.approx(want["err_mean"], rel=1e-12)
    assert row["test_error_pct_std"] == pytest.approx(want["err_std"], rel=1e-12)
    assert row["extra_time_pct_mean"] == pytest.approx(extra.mean(), rel=1e-9)
    assert row["extra_time_pct_std"] == pytest.approx(extra.std(ddof=1), rel=1e-9)
    assert row["expected_extra"] == pytest.approx(0.5)


def test_markdown_shows_mean_pm_std_and_latex_escapes(store, raw):
    md = make_tables(store, "md")["sweep_constant"]
    cell = (raw["dataset"] == "cifar10") & (raw["schedule"] == "constant(0.8)")
    want = _expected(raw, cell & (raw["algorithm"] == "sam"))
    line = next(ln for ln in md.splitlines() if "| a_c=0.8 |" in ln and "CIFAR-10 |" in ln)
    assert f"| {want['err_mean']:.2f} ± {want['err_std']:.2f} |" in line
    tex = make_tables(store, "latex")["sweep_constant"]
    assert r"\begin{tabular}" in tex and r"test error (\%)" in tex
    assert f"{want['err_mean']:.2f} $\\pm$ {want['err_std']:.2f}" in tex
    assert "a\\_c=0.8" in tex  # underscores escaped


def test_partial_sweep_is_flagged_with_counts(store):
    cells = pd.read_parquet(store / "cells")
    trials = pd.read_parquet(store / "trials")
    ids = set(cells.loc[cells["sweep"] == "p-gamma", "cell_id"])
    done = len(ids & set(trials["cell_id"]))
    assert 0 < done < len(ids)
    md = make_tables(store, "md")["sweep_p_gamma"]
    assert f"partial: {done} of {len(ids)} cells finished" in md
    assert "partial" not in make_tables(store, "md")["sweep_constant"]


def test_table2_comes_from_the_schedules_module(csv_tables, raw):
    from rstsweep.schedules.listing import schedule_rows

    rows = schedule_rows(int(raw["steps"].mode().iloc[0]))
    t2 = csv_tables["table2_schedules"]
    assert list(t2["family"]) == [r["family"] for r in rows]
    assert np.allclose(t2["expected_extra"], [r["expected_extra"] for r in rows])
    assert t2.set_index("family").loc["sin1", "closed_form_extra"] == pytest.approx(2 / math.pi)


def test_paper_vs_here_side_by_side(store, raw, csv_tables):
    pv = csv_tables["paper_vs_here"]
    row = pv[(pv["schedule"] == "constant(0.8)") & (pv["dataset"] == "cifar10")]
    row = row[row["model"] == "resnet18"].iloc[0]
    assert row["case"] == "RST constant(0.8)" and row["role"] == "rst"
    assert row["paper"] == pytest.approx(3.65)
    cell = (raw["dataset"] == "cifar10") & (raw["schedule"] == "constant(0.8)")
    assert row["here"] == pytest.approx(_expected(raw, cell)["err_mean"], rel=1e-12)
    # WRN-28-10 is not in this store: its paper numbers stay, ours are empty
    wrn = pv[pv["model"] == "wrn-28-10"]
    assert len(wrn) and wrn["here"].isna().all()
    assert wrn["here_setting"].str.startswith("not in store").all()
    best = pv[(pv["pick"] == "best") & (pv["family"] == "piecewise") & (pv["group_index"] == 1)]
    best = best[best["model"] == "resnet18"]
    assert set(best["case"]) == {"piecewise group 1, best case"}
    grp = raw[(raw["group"] == "piecewise-1") & (raw["dataset"] == "cifar100")]
    want = grp.groupby("schedule")["test_error"].mean().min() * 100
    assert best[best["dataset"] == "cifar100"]["here"].iloc[0] == pytest.approx(want, rel=1e-12)
    md = make_tables(store, "md")["paper_vs_here"]
    assert "—" in md and "| RST constant(0.8) |" in md
    assert "Zhao et al., Fig. 1" in md and "DESIGN" not in md


def test_paper_numbers_are_typed_data_citing_the_paper():
    numbers = paper_numbers()
    assert len(numbers) >= 10
    assert numbers["value"].notna().all()
    cites = r"Zhao et al\., (Table \d|Fig\. \d|the authors' )"
    assert numbers["source"].str.match(cites).all()
    assert set(numbers["role"]) <= {"sgd", "sam", "rst"}
    assert str(numbers["group_index"].dtype) == "Int64"
    assert set(numbers["pick"]) <= {"", "best", "all"}
    # a number names a schedule, a Fig. 2 group, or only a role
    assert not ((numbers["schedule"] != "") & (numbers["family"] != "")).any()
    assert ((numbers["family"] != "") == numbers["group_index"].notna()).all()
    constant = numbers[(numbers["schedule"] == "constant(0.8)")]
    assert sorted(constant["value"]) == [2.71, 3.65, 16.17, 19.61]  # Zhao et al., Fig. 1


def test_ordering_check_matches_plain_comparison(raw, csv_tables):
    order = csv_tables["ordering"]
    means = raw.groupby(["dataset", "algorithm", "schedule"])["test_error"].mean() * 100
    for row in order.itertuples():
        sgd = means[(row.dataset, "sgd", "constant(0)")]
        sam = means[(row.dataset, "sam", "constant(1)")]
        a_c = row.case.split("=")[1]
        rst = means[(row.dataset, "sam", f"constant({a_c})")]
        assert row.rst_pct == pytest.approx(rst, rel=1e-12)
        assert bool(row.sgd_gt_rst_gt_sam) == bool(sgd > rst > sam)
    assert len(order) == 2 * 9


def test_single_seed_store_has_no_spread(tmp_path):
    small_store(tmp_path, SWEEPS_FILE, sweeps=["constant"], datasets=["cifar10"], seeds=1)
    csv = pd.read_csv(io.StringIO(make_tables(tmp_path, "csv")["sweep_constant"]))
    assert csv["n_seeds"].eq(1).all() and csv["test_error_pct_std"].isna().all()
    md = make_tables(tmp_path, "md")
    body = [ln for ln in md["sweep_constant"].splitlines() if ln.startswith("| ResNet-18")]
    assert body and all(" ± " not in ln.split("|")[8] for ln in body)  # test error column
    assert "one seed: no spread" in md["ordering"]


def test_bad_format_is_a_user_error(store):
    with pytest.raises(RstError, match="--format: 'xlsx' is not one of md, csv, latex"):
        make_tables(store, "xlsx")


def test_empty_store_gives_schedule_and_paper_tables_only(tmp_path):
    tables = make_tables(tmp_path, "md")
    assert set(tables) == {"table2_schedules", "paper_vs_here"}
    assert "not in store (store has: nothing)" in tables["paper_vs_here"]


def _result(cell, error: float, status: str = "ok"):
    """A TrainResult as the trainer would return it (T = 12 steps, the real coin draws)."""
    from rstsweep.core.result import EpochRecord, TrainResult
    from rstsweep.schedules import parse

    schedule = parse(cell.config.schedule)
    steps = 12
    draws = schedule.draws(steps, cell.config.seed)
    if cell.config.algorithm == "sgd":
        draws = np.zeros(steps, dtype=bool)
    time_s = 1.0 + draws.sum() * 0.1
    return TrainResult(
        cell_id=cell.cell_id,
        status=status,
        error=None if status == "ok" else "loss is nan at step 3",
        steps=steps,
        sa_steps=int(draws.sum()),
        expected_extra=schedule.expected_extra(steps),
        closed_form_extra=schedule.closed_form_extra,
        train_time_s=time_s,
        sgd_step_s=0.08,
        sa_step_s=0.18,
        train_loss=0.5,
        train_error=0.2,
        test_loss=0.6 if status == "ok" else float("nan"),
        test_error=error if status == "ok" else float("nan"),
        epochs=[EpochRecord(1, 0.5, 0.2, 0.6, error, 0.05, steps, int(draws.sum()), time_s)],
        draws=draws,
    )


def test_store_written_through_the_store_api(tmp_path):
    """Cells expanded from sweeps.yaml (ci profile) and written with Store.write_result, one of
    them diverged: the tables show the errors we wrote and leave the diverged one out."""
    from rstsweep.store.store import Store
    from rstsweep.testing.synthetic import grid_cells

    cells = grid_cells(SWEEPS_FILE, "ci", ["constant"])
    store = Store(tmp_path)
    store.record_cells(cells, "ci")
    errors = {}
    for i, cell in enumerate(cells):
        status = "diverged" if cell.label == "a_c=0.9" else "ok"
        errors[cell.label] = 0.30 - 0.01 * i
        store.write_result(cell, _result(cell, errors[cell.label], status), "ci")
    table = pd.read_csv(io.StringIO(make_tables(tmp_path, "csv")["sweep_constant"]))
    by_case = table.set_index("case")
    for label, error in errors.items():
        if label == "a_c=0.9":
            assert by_case.loc[label, "n_diverged"] == 1 and by_case.loc[label, "n_seeds"] == 0
            assert math.isnan(by_case.loc[label, "test_error_pct_mean"])
        else:
            assert by_case.loc[label, "test_error_pct_mean"] == pytest.approx(error * 100)
    md = make_tables(tmp_path, "md")["sweep_constant"]
    assert "(+1 div.)" in md
    from rstsweep.analysis.figures import make_figures

    paths = make_figures(tmp_path, tmp_path / "figs", note=lambda _: None)
    assert [p.name for p in paths] == ["figure1.png", "figure3.png"]


def test_table_number_formats_come_from_core_format():
    from rstsweep.core.format import format_seeds, format_share, format_time_mean_std

    assert format_time_mean_std(17.83, 0.12) == "17.8 ± 0.1 s"
    assert format_time_mean_std(0.5, float("nan")) == "0.500 s"  # CI-sized runs
    assert format_time_mean_std(300.0, 30.0) == "5.0 ± 0.5 min"
    assert format_time_mean_std(7200.0, None) == "2.0 h"
    assert format_time_mean_std(float("nan"), 1.0) == "—"
    assert format_seeds(3) == "3" and format_seeds(2, 1) == "2 (+1 div.)"
    assert format_share(4, 10) == "4 of 10 cells"


def test_no_design_note_or_issue_cited_in_analysis_or_its_data():
    import re

    import rstsweep

    root = Path(rstsweep.__file__).parent
    files = [*(root / "analysis").glob("*.py"), root / "data" / "paper_numbers.csv"]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "DESIGN" not in text and not re.search(r"[Ii]ssue \d", text), path

"""The whole pipeline as a user types it, on the repo's own `sweeps.yaml` and its `ci` profile:
`run` (real Ray, real trainer) -> `status` -> `figures` -> `tables`, then `run` again (resume with
nothing left). The tables' numbers are checked against the raw Parquet read with plain pandas."""

from __future__ import annotations

import io
import os
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

from processes import cli_process
from rstsweep.sweeps import expand

REPO = Path(__file__).resolve().parents[1]
SWEEPS_FILE = REPO / "sweeps.yaml"

pytestmark = pytest.mark.slow


# a real `ci` run may take minutes; no usage stats from the Ray it starts
_cli = partial(cli_process, timeout=600, env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})


@pytest.fixture(scope="module")
def ci_store(tmp_path_factory) -> Path:
    """A real store: the `constant` and `trigonometric` sweeps under the ci profile."""
    work = tmp_path_factory.mktemp("e2e")
    for sweep in ("constant", "trigonometric"):
        proc = _cli(
            "run", sweep, "--file", str(SWEEPS_FILE), "--profile", "ci", "--store", "store",
            "--no-progress", cwd=work,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return work / "store"


def test_every_cell_is_in_the_store_exactly_once(ci_store):
    trials = pd.read_parquet(ci_store / "trials")
    sweeps = ("constant", "trigonometric")
    expected = {c.cell_id for s in sweeps for c in expand(SWEEPS_FILE, s, "ci")}
    assert sorted(trials["cell_id"]) == sorted(expected)  # no cell lost, none duplicated
    assert set(trials["status"]) == {"ok"}
    # realized Δη is what the coin really drew: sa_steps / steps, and SGD/SAM are the endpoints
    assert (trials["realized_extra"] == trials["sa_steps"] / trials["steps"]).all()
    assert set(trials.loc[trials["algorithm"] == "sgd", "sa_steps"]) == {0}
    sam = trials[trials["schedule"] == "constant(1)"]
    assert (sam["sa_steps"] == sam["steps"]).all()


def test_rerun_is_a_resume_with_nothing_left(ci_store):
    before = pd.read_parquet(ci_store / "trials")
    proc = _cli(
        "run", "constant", "--file", str(SWEEPS_FILE), "--profile", "ci", "--store", "store",
        "--no-progress", cwd=ci_store.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    after = pd.read_parquet(ci_store / "trials")
    assert len(after) == len(before)
    assert set(after["attempt_id"]) == set(before["attempt_id"])


def test_status_reports_every_cell_done(ci_store):
    proc = _cli(
        "status", "constant", "--store", "store", "--file", str(SWEEPS_FILE), "--profile", "ci",
        cwd=ci_store.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    n = len(expand(SWEEPS_FILE, "constant", "ci"))
    assert f"{n}" in proc.stdout and "pending" in proc.stdout


def test_figures_from_the_real_store(ci_store, tmp_path):
    proc = _cli("figures", "--store", str(ci_store), "--out", "figs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    names = [Path(line).name for line in proc.stdout.splitlines()]
    assert {"figure1.png", "figure3.png", "figure4.png"} <= set(names)
    for name in names:
        assert (tmp_path / "figs" / name).read_bytes().startswith(b"\x89PNG")
    assert "figure 5 skipped" in proc.stderr  # no p-gamma sweep in this store


def test_tables_equal_plain_pandas_aggregates_of_the_real_store(ci_store, tmp_path):
    proc = _cli("tables", "--store", str(ci_store), "--format", "csv", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = _cli("tables", "--store", str(ci_store), "--format", "csv", "--out", "t", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    raw = pd.read_parquet(ci_store / "trials")
    table = pd.read_csv(tmp_path / "t" / "sweep_constant.csv")
    for a_c in ("0.2", "0.7"):
        mine = raw[(raw["schedule"] == f"constant({a_c})") & (raw["algorithm"] == "sam")]
        assert len(mine) == 1  # one seed under ci
        row = table[table["case"] == f"a_c={a_c}"].iloc[0]
        assert row["test_error_pct_mean"] == pytest.approx(mine["test_error"].iloc[0] * 100)
        assert row["realized_extra_mean"] == pytest.approx(mine["realized_extra"].iloc[0])
    baselines = pd.read_csv(io.StringIO((tmp_path / "t" / "table1_baselines.csv").read_text()))
    sgd = raw[raw["algorithm"] == "sgd"]["test_error"]
    row = baselines[baselines["case"] == "SGD"].iloc[0]
    assert row["test_error_pct_mean"] == pytest.approx(sgd.mean() * 100)

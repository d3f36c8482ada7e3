"""The Python API: docs/api.md's walk-through runs as written against a small store (its blocks
executed in order, as notebook cells), its numbers checked against the store read independently;
`import rstsweep` stays lazy and torch/ray-free; user errors are RstError."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import rstsweep
from rstsweep.errors import RstError
from rstsweep.testing.synthetic import small_store

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"
SWEEPS_FILE = ROOT / "src" / "rstsweep" / "data" / "sweeps.yaml"


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


@pytest.fixture
def store_dir(tmp_path, monkeypatch) -> Path:
    """./results holding the constant sweep (ResNet-18, CIFAR-10, 2 seeds), cwd = its parent."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "results"
    small_store(root, SWEEPS_FILE, sweeps=["constant"], datasets=["cifar10"], seeds=2)
    return tmp_path / "results"


def raw(store_dir: Path, table: str) -> pd.DataFrame:
    """A store table read straight from its Parquet files (no rstsweep reader involved)."""
    return pq.read_table(store_dir / table).to_pandas()


def test_walkthrough_runs_and_its_numbers_match_the_store(store_dir, tmp_path):
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 7
    ns: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC}:block{i}", "exec"), ns)  # the notebook, cell by cell

    trials = raw(store_dir, "trials")  # the synthetic store has no duplicates: one row per cell
    cells = raw(store_dir, "cells")
    assert len(ns["trials"]) == trials["cell_id"].nunique() == 22  # 11 cases x 2 seeds
    assert set(ns["members"]["group"]) == set(raw(store_dir, "cells")["group"])

    cell = ns["cell"]
    constant = cells.loc[cells["group"] == "constant", "cell_id"]
    assert cell["test_error"] == trials.loc[trials["cell_id"].isin(constant), "test_error"].min()
    assert list(ns["curve"]["epoch"]) == [0, 1] or list(ns["curve"]["epoch"]) == [1, 2]
    row = trials.set_index("cell_id").loc[cell["cell_id"]]
    assert len(ns["draws"]) == row["steps"]
    assert ns["draws"]["x"].sum() == row["sa_steps"]
    assert 0 < row["sa_steps"] < row["steps"]  # an RST cell: some steps SAM, some SGD

    # the SQL block vs a pandas group-by of the raw files
    want = (
        trials[["cell_id", "test_error"]]
        .merge(cells[["cell_id", "sweep", "group"]], on="cell_id")
        .groupby(["sweep", "group"])["test_error"]
        .mean()
    )
    got = ns["best"].set_index(["sweep", "group"])["mean_error"]
    assert np.allclose(got.sort_index(), want.sort_index())
    assert list(got) == sorted(got)  # ORDER BY mean_error

    svg = (tmp_path / "figure1.svg").read_text(encoding="utf-8")
    assert "<svg" in svg and ns["fig1"].axes
    assert ns["total"].cells == 33  # demo constant: (9 RST + SGD + SAM) x 3 seeds
    assert set(ns["sweeps"].sweeps) >= {"constant", "baselines", "policies"}


def test_import_is_lazy_and_reading_never_imports_torch_or_ray(store_dir):
    code = (
        "import sys, rstsweep; "
        "assert 'pandas' not in sys.modules and 'rstsweep.api' not in sys.modules; "
        "s = rstsweep.open_store('results'); s.trials(); s.epochs(); s.cells(); "
        "from rstsweep import figures; figures.figure1(s); rstsweep.plan('constant', store=None); "
        "bad = [m for m in ('torch', 'ray', 'torchvision', 'optuna') if m in sys.modules]; "
        "assert not bad, bad; print(sorted(rstsweep.__all__))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "open_store" in proc.stdout and "figures" in proc.stdout


def test_epochs_of_one_cell_and_cells_of_one_sweep(store_dir):
    store = rstsweep.open_store(store_dir)
    epochs = raw(store_dir, "epochs")
    cid = epochs["cell_id"].iloc[0]
    mine = store.epochs(cid)
    assert set(mine["cell_id"]) == {cid}
    assert len(mine) == (epochs["cell_id"] == cid).sum()
    assert store.cells("no-such-sweep").empty
    assert len(store.cells("constant")) == len(raw(store_dir, "cells"))


def test_user_errors_are_one_line_rst_errors(store_dir, tmp_path, monkeypatch):
    with pytest.raises(RstError, match="no result store here"):
        rstsweep.open_store(tmp_path / "nowhere")
    store = rstsweep.open_store("results")
    with pytest.raises(RstError, match="cell_id nope: no draws"):
        store.draws("nope")
    with pytest.raises(RstError, match=r"missing\.yaml: sweeps file not found"):
        rstsweep.load_sweeps("missing.yaml")
    # DuckDB absent: find_spec answers None for a module mapped to None in sys.modules
    monkeypatch.setitem(sys.modules, "duckdb", None)
    with pytest.raises(RstError) as err:
        store.sql("SELECT 1")
    assert str(err.value) == (
        "ResultStore.sql() needs duckdb (not installed): pip install 'rstsweep[sql]'"
    )


def test_run_rejects_an_unknown_option_before_starting_anything(store_dir):
    with pytest.raises(RstError, match="run\\(\\): unknown option 'cpus'"):
        rstsweep.run("constant", profile="ci", store="results-ci", cpus=2)

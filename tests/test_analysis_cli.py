"""`rstsweep figures` and `rstsweep tables` as a user runs them (real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from processes import cli_process
from rstsweep.testing.synthetic import small_store

SWEEPS_FILE = Path(__file__).resolve().parents[1] / "sweeps.yaml"


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("store")
    small_store(
        root, SWEEPS_FILE, sweeps=["constant", "p-gamma"], seeds=2, unfinished={"p-gamma": 0.5}
    )
    return root


def test_figures_prints_the_paths_it_wrote(store, tmp_path):
    proc = cli_process("figures", "--store", str(store), "--out", "figs", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    paths = [Path(line) for line in proc.stdout.splitlines()]
    assert [p.name for p in paths] == ["figure1.png", "figure3.png", "figure5.png", "paired.png"]
    assert all((tmp_path / p).read_bytes().startswith(b"\x89PNG") for p in paths)
    assert "note: figure 2 skipped" in proc.stderr
    assert "note: figure 5: sweep p-gamma is partial" in proc.stderr


def test_tables_to_files_and_stdout(store, tmp_path):
    proc = cli_process(
        "tables", "--store", str(store), "--format", "csv", "--out", "t", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    written = [tmp_path / line for line in proc.stdout.splitlines()]
    names = {p.name for p in written}
    assert {"table1_baselines.csv", "sweep_constant.csv", "paper_vs_here.csv"} <= names
    raw = pd.read_parquet(store / "trials")
    sgd = raw[(raw["algorithm"] == "sgd") & (raw["dataset"] == "cifar10")]["test_error"]
    t1 = pd.read_csv(tmp_path / "t" / "table1_baselines.csv")
    row = t1[(t1["case"] == "SGD") & (t1["dataset"] == "cifar10")].iloc[0]
    assert row["test_error_pct_mean"] == pytest.approx(sgd.mean() * 100, rel=1e-12)
    md = cli_process("tables", "--store", str(store), cwd=tmp_path)
    assert md.returncode == 0, md.stderr
    assert "### Table 1: SGD and SAM" in md.stdout and "_partial: " in md.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["figures", "--format", "jpg"], "--format: 'jpg' is not one of png, pdf, svg"),
        (["tables", "--format", "xlsx"], "--format: 'xlsx' is not one of md, csv, latex"),
        (["tables", "--store", "nowhere"], "nowhere: no result store here (pass --store DIR)"),
    ],
)
def test_user_errors_exit_2_with_one_line(store, tmp_path, args, message):
    if "--store" not in args:
        args = [*args, "--store", str(store)]
    proc = cli_process(*args, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rstsweep: error: ")
    assert message in lines[0]


def test_analysis_imports_neither_torch_nor_ray():
    code = (
        "import sys, rstsweep.analysis.figures, rstsweep.analysis.tables, "
        "rstsweep.testing.synthetic; "
        "bad = [m for m in ('torch', 'ray', 'torchvision') if m in sys.modules]; "
        "assert not bad, bad; "
        # the user's backend choice survives the import (a notebook keeps its inline backend)
        "import matplotlib; assert matplotlib.get_backend().lower() == 'svg'"
    )
    env = {**os.environ, "MPLBACKEND": "svg"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr

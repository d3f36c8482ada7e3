"""Slices of a sweep (`--where KEY=VALUE`, `--seeds`) for run/plan/status, and `status --json` /
`status --pending`, on stores built from synthetic TrainResults (no torch, no ray)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factories import make_result
from rstsweep.errors import RstError
from rstsweep.store.store import Store
from rstsweep.sweeper.plan import cell_steps
from rstsweep.sweeper.slices import parse_slice, select
from rstsweep.sweeps import expand


@pytest.fixture
def demo_cells(sweeps_file):
    return expand(sweeps_file, "constant", "demo")  # sgd, sam, a_c = 0.1 .. 0.9; seeds 0, 1, 2


def test_where_and_seeds_select_by_hand(demo_cells) -> None:
    # an independent filter: the cells whose group is "constant", seed 1, schedule constant(0.3)
    want = [
        c.cell_id
        for c in demo_cells
        if c.group == "constant" and c.config.seed == 1 and c.config.schedule == "constant(0.3)"
    ]
    assert len(want) == 1
    chosen = parse_slice(["group=constant", "schedule=constant(0.3)"], "1")
    assert [c.cell_id for c in select(demo_cells, chosen)] == want
    # numbers match as numbers (rho written 0.050 still matches 0.05); label values keep their "="
    rho = demo_cells[0].config.rho
    assert len(select(demo_cells, parse_slice([f"rho={rho:.3f}0"]))) == len(demo_cells)
    label = next(c.label for c in demo_cells if c.group == "constant")
    assert {c.label for c in select(demo_cells, parse_slice([f"label={label}"]))} == {label}
    # a key given twice: either value; order of the sweep kept
    both = select(demo_cells, parse_slice(["group=sgd", "group=sam"]))
    assert [c.group for c in both] == [c.group for c in demo_cells if c.group in ("sgd", "sam")]
    assert select(demo_cells, parse_slice()) == demo_cells


@pytest.mark.parametrize(
    ("where", "seeds", "message"),
    [
        (["modl=resnet18"], None, "--where modl: unknown key (did you mean 'model'?"),
        (["model"], None, "--where 'model': expected KEY=VALUE"),
        ([], "0,x", "--seeds '0,x': expected integers"),
    ],
)
def test_bad_slices_are_one_line_errors(where, seeds, message) -> None:
    with pytest.raises(RstError) as info:
        parse_slice(where, seeds)
    assert str(info.value).startswith(message)


def test_a_slice_that_selects_nothing_says_what_there_is(demo_cells) -> None:
    with pytest.raises(RstError, match=r"--where model=resnet99: no cell has it \(model: fastcnn"):
        select(demo_cells, parse_slice(["model=resnet99"]))
    with pytest.raises(RstError, match=r"--seeds 7: no cell has them \(seeds 0,1,2\)"):
        select(demo_cells, parse_slice([], "7"))


def test_plan_cli_counts_only_the_slice(cli, sweeps_file, tmp_path) -> None:
    result = cli(
        "plan", "constant", "-f", sweeps_file, "-p", "demo", "--no-probe", "-s", tmp_path / "s",
        "--where", "group=constant", "--seeds", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.strip().startswith("total")]
    assert lines and lines[0].split()[2] == "9"  # a_c = 0.1 .. 0.9, one seed
    bad = cli("plan", "constant", "-f", sweeps_file, "-p", "demo", "--where", "nope=1")
    assert bad.exit_code == 2
    assert bad.stderr.strip().splitlines() == [
        "rstsweep: error: --where nope: unknown key "
        "(not a cell field; `rstsweep fields` lists them)"
    ]


def _store(root: Path, cells, done: int, failed: int) -> Store:
    store = Store(root)
    store.record_cells(cells, "demo")
    for cell in cells[:done]:
        store.write_result(cell, make_result(cell, steps=cell_steps(cell.config)), "demo")
    for cell in cells[done : done + failed]:
        store.write_failure(cell, "Traceback (most recent call last):\nRuntimeError: boom")
    return store


def test_status_json_and_pending(cli, sweeps_file, demo_cells, tmp_path) -> None:
    _store(tmp_path / "s", demo_cells, done=3, failed=2)
    args = ("status", "constant", "-s", tmp_path / "s", "-f", sweeps_file, "-p", "demo")
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    (sweep,) = record["sweeps"]
    total = sweep["total"]
    n = len(demo_cells)
    assert (total["cells"], total["done"], total["failed"], total["pending"]) == (n, 3, 2, n - 5)
    assert record["finished_cells"] == 3
    open_ids = [c["cell_id"] for c in sweep["open_cells"]]
    assert open_ids == [c.cell_id for c in demo_cells[3:]]
    first = sweep["open_cells"][0]
    assert first["state"] == "failed" and first["attempts"] == 1
    assert first["error"].endswith("RuntimeError: boom")
    # key settings: the fields that vary across the sweep (schedule, seed, ...), not constants
    cell = demo_cells[3]
    assert first["settings"]["seed"] == cell.config.seed
    assert first["settings"]["schedule"] == cell.config.schedule
    assert "model" not in first["settings"]  # one model in the demo profile

    pending = cli(*args, "--pending").stdout.splitlines()
    assert pending[0].split("\t")[:4] == ["cell_id", "group", "label", "state"]
    rows = [line.split("\t") for line in pending[1:]]
    assert [r[0] for r in rows] == open_ids
    assert rows[0][3] == "failed" and rows[0][-1] == "RuntimeError: boom"
    assert f"seed={cell.config.seed}" in rows[0][4].split()

    sliced = json.loads(cli(*args, "--json", "--where", "group=sgd").stdout)
    assert sliced["sweeps"][0]["total"]["cells"] == sum(c.group == "sgd" for c in demo_cells)
    no_sweep = cli("status", "-s", tmp_path / "s", "--seeds", "0")
    assert no_sweep.exit_code == 2 and "name the sweep" in no_sweep.stderr


@pytest.mark.slow
def test_run_where_runs_only_the_slice_and_leaves_a_report(tmp_path) -> None:
    """`rstsweep run` for real (local Ray, the real trainer, tiny cells): only the slice runs, and
    the run ends by writing the store's report.html, which lists the slice's cells."""
    import shutil
    import tempfile

    import pandas as pd

    from processes import cli_process, ray_env
    from tiny_sweeps import write_tiny_sweeps

    sweeps = write_tiny_sweeps(tmp_path / "s.yaml", [0.2, 0.4, 0.6], epochs=1)
    ray_parent = Path(tempfile.mkdtemp(prefix="rst-", dir="/tmp"))  # short: Ray's socket paths
    store = tmp_path / "st"
    args = ["run", "s", "--file", sweeps, "--profile", "t", "--store", store, "--no-progress"]
    args += ["--tracker", "none", "--where", "group=constant", "--where", "x=0.4"]
    args += ["--where", "x=0.6", "--seeds", "0"]
    try:
        done = cli_process(*args, cwd=tmp_path, timeout=300, env=ray_env(ray_parent / "r"))
    finally:
        shutil.rmtree(ray_parent, ignore_errors=True)
    assert done.returncode == 0, done.stdout + done.stderr
    cells = [c for c in expand(sweeps, "s", "t") if c.group == "constant" and c.x in (0.4, 0.6)]
    trials = pd.concat(pd.read_parquet(f) for f in (store / "trials").glob("part-*.parquet"))
    assert sorted(trials["cell_id"]) == sorted(c.cell_id for c in cells)
    assert f"report: {store / 'report.html'}" in done.stdout
    page = (store / "report.html").read_text(encoding="utf-8")
    assert all(page.count(c.cell_id) >= 1 for c in cells)
    assert page.count("<summary>manifest</summary>") == 2

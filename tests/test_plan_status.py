"""plan and status on small stores built from synthetic TrainResults (no torch, no ray)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from factories import make_result
from rstsweep.errors import RstError
from rstsweep.schedules import parse
from rstsweep.store.store import Store
from rstsweep.sweeper.plan import cell_steps, make_plan, plan_sweep, steps_per_epoch
from rstsweep.sweeper.status import collect_status, heartbeat_live
from rstsweep.sweeps import expand

A_C = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]


@pytest.fixture
def ci_cells(sweeps_file):
    return expand(sweeps_file, "constant", "ci")  # sgd, sam, a_c = 0.1 .. 0.9


def _store_with_results(root: Path, cells, n_done: int = 5) -> tuple[Store, list]:
    store = Store(root)
    store.record_cells(cells, "ci")
    results = []
    for cell in cells[:n_done]:
        result = make_result(cell, steps=cell_steps(cell.config), seed=cell.config.seed)
        store.write_result(cell, result, "ci")
        results.append(result)
    return store, results


def test_steps_follow_the_trainers_batching_rule(sweeps_file) -> None:
    assert steps_per_epoch(5000, 128) == 39  # drop_last
    assert steps_per_epoch(256, 64) == 4
    assert steps_per_epoch(100, 128) == 1  # smaller than a batch: one short batch
    assert steps_per_epoch(0, 128) == 0
    assert steps_per_epoch(50_000, 256) == 195  # the paper's 195 iterations per CIFAR epoch
    demo = expand(sweeps_file, "constant", "demo")[0].config
    assert cell_steps(demo) == (demo.train_subset // demo.batch_size) * demo.epochs
    paper = expand(sweeps_file, "constant", "paper")[0].config
    assert cell_steps(paper) == 195 * 200


def test_plan_counts_passes_by_hand(ci_cells, tmp_path: Path) -> None:
    plan = make_plan(ci_cells, "constant", "ci", Store(tmp_path / "empty", read_only=True))
    groups = {g.group: g for g in plan.groups}
    assert [g.group for g in plan.groups] == ["sgd", "sam", "constant"]
    assert (groups["sgd"].cells, groups["sam"].cells, groups["constant"].cells) == (1, 1, 9)
    T = 4  # 256 // 64 steps x 1 epoch
    assert groups["sgd"].passes == T
    assert groups["sam"].passes == 2 * T
    # constant(a): p(t) = a at every step, so the discrete Δη is a
    assert groups["constant"].passes == pytest.approx(sum(T * (1 + a) for a in A_C))
    total = plan.total()
    assert total.passes == pytest.approx(T + 2 * T + sum(T * (1 + a) for a in A_C))
    assert total.pending == 11 and total.pending_time_s is None  # no measurements


def test_plan_uses_discrete_extra_and_cheap_sam_costs(sweeps_file) -> None:
    cells = {c.label: c for c in expand(sweeps_file, "piecewise-1", "demo") if c.config.seed == 0}
    cell = cells["b_p=0.3"]
    T = cell_steps(cell.config)
    plan = make_plan([cell], "piecewise-1", "demo", None)
    # independent count: SAM steps are those with t/T >= 0.3
    sa = sum(1 for t in range(T) if t / T >= 0.3)
    assert plan.groups[0].passes == pytest.approx(T + sa)
    looksam = [c for c in expand(sweeps_file, "mixing", "ci") if c.label == "LookSAM p=1"]
    assert make_plan(looksam, "mixing", "ci", None).groups[0].passes == pytest.approx(4 * 1.2)


def test_plan_estimates_time_from_measured_step_costs(
    ci_cells, tmp_path: Path, sweeps_file
) -> None:
    store, _ = _store_with_results(tmp_path, ci_cells, n_done=5)  # sgd, sam, a_c 0.1-0.3
    plan = make_plan(ci_cells, "constant", "ci", store)
    total = plan.total()
    assert (total.done, total.pending) == (5, 6)
    # measured: 0.1 s per base step, 0.2 s per SA step; pending a_c = 0.4 .. 0.9, T = 4
    expected = sum(4 * ((1 - a) * 0.1 + a * 0.2) for a in A_C[3:])
    assert total.pending_time_s == pytest.approx(expected)
    assert total.pending_passes == pytest.approx(sum(4 * (1 + a) for a in A_C[3:]))
    # other settings (demo: batch 128) have no measurement
    demo = plan_sweep(sweeps_file, "constant", "demo", tmp_path)
    assert demo.total().pending_time_s is None


def test_status_counts_done_running_failed_pending(ci_cells, tmp_path: Path, sweeps_file) -> None:
    store, results = _store_with_results(tmp_path, ci_cells, n_done=5)
    store.write_failure(ci_cells[5], "Traceback\nRuntimeError: first")
    store.write_failure(ci_cells[5], "RuntimeError: second")
    store.write_failure(ci_cells[0], "RuntimeError: fixed by a retry")  # done later: not listed
    store.write_heartbeat({"sweep": "constant", "profile": "ci", "running": [ci_cells[6].cell_id]})

    status = collect_status(tmp_path, "constant", sweeps_file, None)  # profile from the heartbeat
    assert status.live
    (sweep,) = status.sweeps
    assert sweep.source == "sweeps file" and sweep.profiles == ["ci"]
    counts = {g.group: g.counts for g in sweep.groups}
    assert counts["sgd"] == {"done": 1, "running": 0, "failed": 0, "pending": 0}
    assert counts["constant"] == {"done": 3, "running": 1, "failed": 1, "pending": 4}
    passes = sum(r.steps + int(r.draws.sum()) for r in results)
    assert sweep.total().passes == status.passes == passes
    assert status.trials == 5
    assert sweep.failures["cell_id"].tolist() == [ci_cells[5].cell_id]
    assert sweep.failures["attempts"].tolist() == [2]
    assert sweep.failures["error"].tolist() == ["RuntimeError: second"]

    # no YAML: membership from the cells table gives the same counts
    from_table = collect_status(tmp_path, "constant", None, None).sweeps[0]
    assert from_table.source == "cells table"
    assert {g.group: g.counts for g in from_table.groups} == counts


def test_stale_or_dead_heartbeat_is_not_running(ci_cells, tmp_path: Path, sweeps_file) -> None:
    store, _ = _store_with_results(tmp_path, ci_cells, n_done=2)
    running = [ci_cells[3].cell_id]
    store.write_heartbeat(
        {"sweep": "constant", "running": running, "updated_at": time.time() - 600}
    )
    assert not heartbeat_live(store.read_heartbeat())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.write_heartbeat({"sweep": "constant", "running": running, "pid": dead.pid})
    assert not heartbeat_live(store.read_heartbeat())
    status = collect_status(tmp_path, "constant", sweeps_file, "ci")
    assert status.sweeps[0].total().counts == {"done": 2, "running": 0, "failed": 0, "pending": 9}


def test_status_needs_some_membership(tmp_path: Path, ci_cells, sweeps_file) -> None:
    store = Store(tmp_path)
    cell = ci_cells[0]
    store.write_result(cell, make_result(cell, steps=4), "ci")  # trials, but no cells table
    with pytest.raises(RstError, match=r"no cells recorded .*pass --file and --profile"):
        collect_status(tmp_path, "constant", None, None)
    with pytest.raises(RstError, match=r"unknown sweep 'nope'"):
        collect_status(tmp_path, "nope", sweeps_file, "ci")
    with pytest.raises(RstError, match=r"no result store here"):
        collect_status(tmp_path / "absent", None, None, None)
    overall = collect_status(tmp_path, None, None, None)
    assert overall.sweeps == [] and overall.trials == 1


def _rows(out: str) -> dict[str, list[str]]:
    """The body rows of a rich table, by first cell."""
    cells = [[c.strip() for c in line.split("│")] for line in out.splitlines() if "│" in line]
    return {row[0]: row for row in cells}


def test_cli_plan_status_compact_output(ci_cells, tmp_path: Path, sweeps_file, cli) -> None:
    store_dir = tmp_path / "store"
    store, _ = _store_with_results(store_dir, ci_cells, n_done=5)
    store.write_failure(ci_cells[5], "RuntimeError: boom")
    s, f = str(store_dir), str(sweeps_file)

    result = cli("plan", "constant", "-p", "ci", "-f", f, "-s", s)
    code, out = result.exit_code, result.stdout
    assert code == 0
    rows = _rows(out)
    assert rows["constant"][1:5] == ["9", "3", "6", "0.500"]  # cells, done, pending, E[Δη]
    assert "estimated time: 4 s of training" in out  # 3.96 s by hand (test above)

    # demo's settings were never run; without a probe (tests/test_probe.py) there is no estimate
    result = cli("plan", "constant", "-p", "demo", "-f", f, "-s", s, "--no-probe")
    code, out = result.exit_code, result.stdout
    assert code == 0 and "no measurements yet" in out

    result = cli("status", "constant", "-s", s, "-f", f)
    code, out = result.exit_code, result.stdout
    assert code == 0
    rows = _rows(out)  # group │ cells │ done │ running │ failed │ pending │ ...
    assert rows["constant"][1:6] == ["9", "3", "0", "1", "5"]
    assert rows["total"][1:6] == ["11", "5", "0", "1", "5"]
    assert "RuntimeError: boom" in out and "realized compute" in out

    result = cli("status", "-s", s)
    code, out = result.exit_code, result.stdout
    assert code == 0 and "constant" in out

    result = cli("compact", "-s", s)
    code, out = result.exit_code, result.stdout
    assert code == 0 and "trials: 5 -> 1 file" in out
    assert len(Store(store_dir).read("trials")) == 5


def test_expected_extra_of_trig_uses_discrete_mean(sweeps_file) -> None:
    cells = [c for c in expand(sweeps_file, "trigonometric", "ci") if c.label == "sin1"]
    T = cell_steps(cells[0].config)
    plan = make_plan(cells, "trigonometric", "ci", None)
    assert plan.groups[0].mean_extra == pytest.approx(parse("sin1").expected_extra(T))


def test_status_of_a_synthetic_store_matches_its_tables(small_synthetic_store, cli) -> None:
    """`rstsweep status` on the shared synthetic store: per-sweep counts recomputed here from the
    raw Parquet tables with plain pandas."""
    import pandas as pd

    from rstsweep.core.format import format_count

    root = small_synthetic_store
    cells = pd.read_parquet(root / "cells").drop_duplicates(["sweep", "cell_id"])
    trials = pd.read_parquet(root / "trials").drop_duplicates("cell_id")
    failed_ids = set(pd.read_parquet(root / "failures")["cell_id"])
    result = cli("status", "-s", root)
    assert result.exit_code == 0, result.stderr
    rows = _rows(result.stdout)
    for sweep in ("constant", "p-gamma"):
        ids = set(cells[cells["sweep"] == sweep]["cell_id"])
        done = ids & set(trials["cell_id"])
        failed = (ids & failed_ids) - done
        mine = trials[trials["cell_id"].isin(done)]
        passes = format_count(int(mine["steps"].sum() + mine["sa_steps"].sum()))
        expected = [str(len(ids)), str(len(done)), "0", str(len(failed))]
        assert rows[sweep][1:5] == expected, sweep
        assert rows[sweep][5:7] == [str(len(ids) - len(done) - len(failed)), passes], sweep
    assert rows["p-gamma"][5] != "0"  # half of p-gamma is unfinished

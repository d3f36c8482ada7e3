"""`rstsweep search`: bad input is one line and exit 2; a search through Ray Tune + Optuna respects
the budget, writes every evaluated cell once as an ordinary cell, and a re-run continues it.

The Ray test trains with a stand-in (`fake_search_train`, error falls with realized compute) so it
takes seconds per suggestion; it is marked slow because it starts Ray.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from rstsweep.core.result import EpochRecord, TrainResult
from rstsweep.errors import RstError
from rstsweep.schedules import parse, uniforms
from rstsweep.store.store import Store
from rstsweep.sweeper.options import RunOptions
from rstsweep.sweeper.search import SUFFIX, SearchOptions, run_search
from rstsweep.sweeper.search.objective import objective

YAML = """
profiles:
  t:
    seeds: [0, 1]
    models: [fastcnn]
    datasets: [fashion-mnist]
    config: {batch_size: 64, lr: 0.05, threads: 1}
    overrides: {epochs: 1, train_subset: 256, test_subset: 128, width: 4}
sweeps:
  baselines:
    groups:
      sgd: {algorithm: sgd, label: SGD, x: 0}
      sam: {algorithm: sam, schedule: "constant(1)", label: SAM, x: 1}
  s:
    include: [baselines]
    groups:
      constant:
        grid: {a_c: [0.2, 0.5]}
        schedule: "constant({a_c})"
        label: "a_c={a_c}"
  two:
    groups:
      c: {schedule: "constant(0.5)"}
      b: {schedule: "budget(0.5)"}
"""

T = 200
RUN_FIELDS = {f.name for f in fields(RunOptions)}


def fake_search_train(config, out_dir, resume=False, on_epoch=None):
    """Coins of the schedule's nominal p over T steps; test error 0.4 − 0.2·realized + 0.01·seed."""
    schedule = parse(config.schedule)
    draws = uniforms(T, config.seed) < schedule.probabilities(T)
    realized = float(draws.mean())
    error = 0.4 - 0.2 * realized + 0.01 * config.seed
    record = EpochRecord(1, 1.0, 0.3, 1.0, error, 0.05, T, int(draws.sum()), 0.1)
    return TrainResult(
        config.cell_id(),
        "ok",
        None,
        T,
        int(draws.sum()),
        realized,
        realized,
        0.1,
        0.001,
        0.002,
        1.0,
        0.3,
        1.0,
        error,
        [record],
        draws,
    )


def options(tmp_path: Path, **kw) -> SearchOptions:
    path = tmp_path / "sweeps.yaml"
    path.write_text(YAML)
    run = dict(sweep="s", file=path, profile="t", store=tmp_path / "st", max_concurrent=2)
    run = {**run, "num_cpus": 2, "trackers": ()}
    search = dict(budget=0.3, trials=4)
    for key, value in kw.items():
        (run if key in RUN_FIELDS else search)[key] = value
    return SearchOptions(run=RunOptions(**run), **search)


def test_objective_penalises_over_budget_and_divergence():
    assert objective(0.2, 0.3, 0.3) == 0.2
    assert objective(0.1, 0.4, 0.3) == pytest.approx(1.1)
    assert objective(float("nan"), 0.1, 0.3) == 1.0


@pytest.mark.parametrize(
    ("kw", "needle"),
    [
        ({"budget": 1.5}, "--budget 1.5 is not in [0, 1]"),
        ({"budget": -0.1}, "--budget -0.1 is not in [0, 1]"),
        ({"sweep": "baselines"}, "has nothing to search"),
        ({"sweep": "two"}, "pass --family"),
        ({"sweep": "two", "family": "cos1"}, "--family 'cos1' is not"),
        ({"budget": 0.0}, "no parameter to search"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, kw, needle, cli, cli_main):
    o = options(tmp_path, **kw)
    with pytest.raises(RstError, match=None) as info:
        run_search(o)
    assert needle in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "st").exists()  # nothing written
    args = [
        "search",
        o.sweep,
        "--budget",
        str(o.budget),
        "--trials",
        "3",
        "--file",
        str(o.file),
        "--profile",
        "t",
        "--store",
        str(o.store),
    ]
    if o.family:
        args += ["--family", o.family]
    result = cli(*args)
    assert result.exit_code == 2 and result.stderr.count("\n") == 1 and needle in result.stderr
    assert cli_main(*args)[0] == 2


@pytest.mark.slow
def test_search_respects_budget_writes_ordinary_cells_and_resumes(tmp_path):
    import ray.cloudpickle

    from rstsweep.sweeper.resources import apply_ray_env, ray_temp_dir

    apply_ray_env()
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        _temp_dir=ray_temp_dir(),
    )
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    session = ray._private.worker._global_node.get_session_dir_path()
    try:
        o = options(tmp_path)
        t0 = time.time()
        first = run_search(o, train_fn=fake_search_train)
        assert first.prior == 0 and first.ran == 4
        store = Store(o.store)
        trials = store.read("trials")
        cells = store.read("cells")
        mine = cells[cells["sweep"] == "s" + SUFFIX]
        # ordinary cells: one trials row per cell, each a member of the search sweep
        assert trials["cell_id"].is_unique and set(trials["cell_id"]) == set(mine["cell_id"])
        assert len(trials) == 2 * len(first.cases) and len(first.cases) >= 3  # 2 seeds a case
        # the space caps constant's a at the budget, so every case is within it
        a = trials["param_a"].astype(float)
        assert (a <= 0.3 + 1e-12).all() and (trials["family"] == "constant").all()
        best = first.best(0.3)
        assert best is not None and best["realized_extra"] <= 0.3
        assert best["test_error"] == min(c["test_error"] for c in first.cases)
        # the mean over both seeds: seed 1 adds 0.01 to the error
        row = trials[trials["schedule"] == best["label"]]
        assert best["test_error"] == pytest.approx(row["test_error"].mean())
        # visible to `status` (the search sweep is not in the YAML: its cells table membership)
        from rstsweep.sweeper.status import collect_status

        status = collect_status(o.store, "s" + SUFFIX, file=o.file)
        assert status.sweeps[0].total().counts["done"] == len(trials)
        # re-running continues: 4 cases come back from the store, 2 new suggestions run
        again = run_search(options(tmp_path, trials=6), train_fn=fake_search_train)
        assert again.prior == len(first.cases) and again.ran == 6 - len(first.cases)
        trials2 = Store(o.store).read("trials")
        assert trials2["cell_id"].is_unique and len(trials2) >= len(trials)
        assert set(trials["cell_id"]) <= set(trials2["cell_id"])
        # asking for no more than what is there runs nothing
        done = run_search(options(tmp_path, trials=3), train_fn=fake_search_train)
        assert done.ran == 0 and len(Store(o.store).read("trials")) == len(trials2)
        print(f"search test: {time.time() - t0:.1f} s")
    finally:
        ray.shutdown()
        shutil.rmtree(session, ignore_errors=True)


def test_fake_train_is_deterministic():
    from rstsweep.core.config import CellConfig

    a = fake_search_train(CellConfig(schedule="constant(0.25)", seed=1), None)
    b = fake_search_train(CellConfig(schedule="constant(0.25)", seed=1), None)
    assert a.test_error == b.test_error and np.array_equal(a.draws, b.draws)

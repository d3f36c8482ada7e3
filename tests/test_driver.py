"""The Ray Tune driver with real Ray (one local session per module: 2 CPUs, 2 logical GPUs) and a
stand-in trainer (tests/test_driver_fake.py: ~0.3 s epochs, real checkpoints, real resume).

Cells come from a tiny sweeps YAML written per test and expanded by `rstsweep.sweeps`. What is
checked: the store holds each cell exactly once (raw part files, not the deduplicating reader), a
worker killed mid-trial resumes from its last epoch checkpoint, a grown grid runs only the new
cells, fractional GPUs are placed as asked, a failing cell ends in `failures` (and stays pending),
and an impossible request is refused before anything is written. The CLI and the real trainer are
covered in test_driver_cli.py, the 2-node cluster in test_driver_cluster.py.
"""

from __future__ import annotations

import functools
import shutil
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

import test_driver_fake as fake
from rstsweep.errors import RstError
from rstsweep.store.rows import unpack_draws
from rstsweep.store.store import Store
from rstsweep.sweeper.driver import run_sweep
from rstsweep.sweeper.live import read_events
from rstsweep.sweeper.options import RunOptions
from rstsweep.sweeps import expand
from tiny_sweeps import write_tiny_sweeps

pytestmark = pytest.mark.slow


def raw_trials(store: Path) -> pd.DataFrame:
    """Every trials row on disk (no dedup): a cell run twice would show twice here."""
    files = sorted((store / "trials").glob("part-*.parquet"))
    if not files:
        return pd.DataFrame(columns=["cell_id", "attempt_id", "finished_at"])
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def events_of(summary) -> list[dict]:
    return read_events(summary.run_dir / "events.jsonl")


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the module; run_sweep reuses a Ray that is already up."""
    from rstsweep.sweeper.resources import apply_ray_env, ray_temp_dir

    apply_ray_env()
    import ray

    ray.init(
        address="local",
        num_cpus=2,
        num_gpus=2,  # logical GPUs on a CPU machine
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        _temp_dir=ray_temp_dir(),
    )
    fake.register_by_value()  # workers cannot import the test modules
    session_dir = ray._private.worker._global_node.get_session_dir_path()
    yield ray
    ray.shutdown()
    shutil.rmtree(session_dir, ignore_errors=True)


def test_sweep_end_to_end_one_row_per_cell_then_nothing_to_do(ray_local, tmp_path):
    cells = expand(write_tiny_sweeps(tmp_path / "s.yaml", [0.2, 0.5]), "s", "t")
    store = Store(tmp_path / "store")
    summary = run_sweep(
        cells, store, RunOptions(profile="t", progress=False), train_fn=fake.fake_train
    )

    ids = {c.cell_id for c in cells}
    assert (summary.cells, summary.done, summary.skipped, summary.failed) == (3, 3, 0, 0)
    raw = raw_trials(store.root)
    assert sorted(raw["cell_id"]) == sorted(ids)  # exactly one row per cell
    assert set(raw["profile"]) == {"t"} and set(raw["sweep"]) == {"s"}
    epochs = store.read("epochs")
    assert Counter(epochs["cell_id"]) == dict.fromkeys(ids, 3)
    assert list(epochs[epochs["cell_id"] == cells[0].cell_id]["epoch"]) == [1, 2, 3]
    draws = store.read("draws").iloc[0]
    bits = unpack_draws(draws["bits"], draws["steps"])
    assert draws["steps"] == 12 and bits.tolist() == [i % 2 == 0 for i in range(12)]
    assert sorted(store.read("cells")["group"]) == ["constant", "constant", "sgd"]
    assert store.read_heartbeat() is None  # cleared by a clean end
    done_events = [e for e in events_of(summary) if e["event"] == "done"]
    assert sorted(e["cell_id"] for e in done_events) == sorted(ids)
    assert not (summary.run_dir / "tune").exists()  # scratch dropped after a clean run

    again = run_sweep(
        cells, store, RunOptions(profile="t", progress=False), train_fn=fake.fake_train
    )
    assert (again.done, again.skipped, again.run_dir) == (0, 3, None)  # no Ray experiment at all
    assert len(raw_trials(store.root)) == 3


def test_killed_worker_resumes_from_its_last_epoch_checkpoint(ray_local, tmp_path, monkeypatch):
    marker = tmp_path / "crashed"
    monkeypatch.setenv("RSTSWEEP_TEST_CRASH_ONCE", str(marker))
    cells = expand(write_tiny_sweeps(tmp_path / "s.yaml", [0.5]), "s", "t")
    store = Store(tmp_path / "store")
    summary = run_sweep(
        cells, store, RunOptions(profile="t", progress=False), train_fn=fake.fake_train
    )

    assert marker.exists()  # a worker really died (os._exit right after its epoch-1 report)
    assert (summary.done, summary.failed) == (2, 0)
    events = events_of(summary)
    [retry] = [e for e in events if e["event"] == "retry"]
    assert retry["error"] == "the trial's worker process died"
    crashed = retry["cell_id"]
    epochs = [
        (e["epoch"], e["pid"]) for e in events if e["event"] == "epoch" and e["cell_id"] == crashed
    ]
    # epoch 1 once (the killed attempt), then the retry continues at epoch 2 in another process
    assert [epoch for epoch, _ in epochs] == [1, 2, 3]
    assert epochs[0][1] == int(marker.read_text().split()[0]) != epochs[1][1]
    [done] = [e for e in events if e["event"] == "done" and e["cell_id"] == crashed]
    assert done["start_epoch"] == 1
    assert sorted(raw_trials(store.root)["cell_id"]) == sorted(c.cell_id for c in cells)
    # the stored history is whole: epoch 1 (from the checkpoint) + epochs 2-3 of the retry
    assert list(store.read("epochs").query("cell_id == @crashed")["epoch"]) == [1, 2, 3]


def test_grown_grid_runs_only_the_new_cells(ray_local, tmp_path):
    store = Store(tmp_path / "store")
    first = expand(write_tiny_sweeps(tmp_path / "s.yaml", [0.2, 0.5], epochs=1), "s", "t")
    run_sweep(first, store, RunOptions(profile="t", progress=False), train_fn=fake.fake_train)
    before = raw_trials(store.root).set_index("cell_id")[["attempt_id", "finished_at"]]

    grown = expand(write_tiny_sweeps(tmp_path / "s.yaml", [0.2, 0.5, 0.8], epochs=1), "s", "t")
    new = {c.cell_id for c in grown} - {c.cell_id for c in first}
    assert len(new) == 1
    summary = run_sweep(
        grown, store, RunOptions(profile="t", progress=False), train_fn=fake.fake_train
    )

    assert (summary.cells, summary.done, summary.skipped) == (4, 1, 3)
    assert {e["cell_id"] for e in events_of(summary) if e["event"] == "start"} == new
    after = raw_trials(store.root)
    assert sorted(after["cell_id"]) == sorted(c.cell_id for c in grown)
    pd.testing.assert_frame_equal(
        after.set_index("cell_id").loc[before.index, before.columns], before
    )


def wait_idle(ray, timeout: float = 30.0) -> None:
    """Wait until the previous test's trial actors have released their CPUs/GPUs (Ray frees them
    asynchronously after an experiment ends)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        total, free = ray.cluster_resources(), ray.available_resources()
        if all(free.get(k, 0) >= total[k] for k in ("CPU", "GPU")):
            return
        time.sleep(0.2)


def test_fractional_gpus_are_shared_as_asked(ray_local, tmp_path):
    wait_idle(ray_local)
    cells = expand(write_tiny_sweeps(tmp_path / "s.yaml", [0.2, 0.4, 0.6], epochs=3), "s", "t")
    store = Store(tmp_path / "store")
    summary = run_sweep(
        cells,
        store,
        RunOptions(profile="t", cpus_per_trial=0.5, gpus_per_trial=0.5, progress=False),
        train_fn=functools.partial(fake.fake_train, epoch_s=1.0),
    )
    assert summary.done == 4
    events = events_of(summary)
    done = [e for e in events if e["event"] == "done"]
    # 2 logical GPUs at 0.5 per trial: each trial holds one GPU id, each GPU serves two trials
    assert all(len(e["gpu_ids"]) == 1 for e in done)
    assert sorted(Counter(e["gpu_ids"][0] for e in done).values()) == [2, 2]
    # ... at the same time: all four started before the first one finished
    starts = [e["t"] for e in events if e["event"] == "start"]
    assert len(starts) == 4 and max(starts) < min(e["t"] for e in done)
    assert len({e["pid"] for e in done}) == 4  # four workers, not one reused serially


def test_cell_failing_after_retries_goes_to_failures_and_stays_pending(ray_local, tmp_path):
    cells = expand(write_tiny_sweeps(tmp_path / "s.yaml", [0.5], epochs=1), "s", "t")
    store = Store(tmp_path / "store")
    summary = run_sweep(
        cells[:1],
        store,
        RunOptions(profile="t", max_failures=1, progress=False),
        train_fn=fake.always_fails,
    )
    cid = cells[0].cell_id
    assert (summary.done, summary.failed) == (0, 1)
    assert summary.failures == {cid: f"ValueError: boom in {cid}"}
    events = events_of(summary)
    assert [e["event"] for e in events if e["event"] in ("start", "retry", "failed")] == [
        "start",
        "retry",
        "start",
        "failed",
    ]
    failures = store.read("failures")
    assert (
        list(failures["cell_id"]) == [cid] and failures["error"][0] == f"ValueError: boom in {cid}"
    )
    assert store.done_ids() == set()
    assert (summary.run_dir / "tune").exists()  # kept for inspection after a failure


def test_impossible_request_is_refused_before_the_store_is_touched(ray_local, tmp_path):
    cells = expand(write_tiny_sweeps(tmp_path / "s.yaml", [0.5], epochs=1), "s", "t")
    store = Store(tmp_path / "store")
    t0 = time.monotonic()
    with pytest.raises(RstError) as info:
        run_sweep(cells, store, RunOptions(profile="t", gpus_per_trial=3), train_fn=fake.fake_train)
    assert str(info.value) == (
        "resources: a trial asks for 1 CPU + 3 GPU but any node of the Ray cluster has at most "
        "2 CPU + 2 GPU (1 node); lower --cpus-per-trial/--gpus-per-trial"
    )
    with pytest.raises(RstError, match="asks for 3 CPU"):
        run_sweep(cells, store, RunOptions(profile="t", cpus_per_trial=3), train_fn=fake.fake_train)
    assert time.monotonic() - t0 < 5
    assert not store.root.exists()


def test_trials_get_one_gpu_each_by_default_and_start_longest_first(ray_local, tmp_path):
    wait_idle(ray_local)
    cells = expand(write_tiny_sweeps(tmp_path / "s.yaml", [0.2, 0.9, 0.5], epochs=2), "s", "t")
    store = Store(tmp_path / "store")
    summary = run_sweep(
        cells,
        store,
        RunOptions(profile="t", progress=False, max_concurrent=1),  # one at a time: a clear order
        train_fn=fake.fake_train,
    )
    assert summary.done == 4
    events = events_of(summary)
    label = {c.cell_id: c.label for c in cells}
    # no estimates measured: the pass model, T × (1 + Δη) passes for constant(a), so a = 0.9 first
    # and SGD (Δη = 0) last, whatever the sweeps file's order (0.2, 0.9, 0.5)
    starts = [label[e["cell_id"]] for e in events if e["event"] == "start"]
    assert starts == ["a_c=0.9", "a_c=0.5", "a_c=0.2", "SGD"]
    # no --gpus-per-trial on a Ray with (logical) GPUs: each trial holds one GPU and sees only it
    done = [e for e in events if e["event"] == "done"]
    assert all(len(e["gpu_ids"]) == 1 for e in done)
    assert all(e["cuda_visible"] == e["gpu_ids"][0] for e in done)
    assert next(e for e in events if e["event"] == "run")["request"] == {"cpu": 1.0, "gpu": 1.0}


def test_cpu_trials_beside_gpus_see_no_gpu_and_the_run_warns(ray_local, tmp_path, capfd):
    wait_idle(ray_local)
    cells = expand(write_tiny_sweeps(tmp_path / "s.yaml", [0.5], epochs=1), "s", "t")
    summary = run_sweep(
        cells,
        Store(tmp_path / "store"),
        RunOptions(profile="t", progress=False, gpus_per_trial=0),
        train_fn=fake.fake_train,
    )
    assert summary.done == 2
    done = [e for e in events_of(summary) if e["event"] == "done"]
    # Ray leaves CUDA_VISIBLE_DEVICES unset for a task without GPUs; the trial hides them itself
    assert all(e["gpu_ids"] == [] and e["cuda_visible"] == "" for e in done)
    warning = "rstsweep: warning: --gpus-per-trial 0: trials run on CPUs while 2 GPU(s) sit idle"
    assert warning in capfd.readouterr().err.splitlines()


def test_trial_given_a_gpu_it_cannot_see_fails_in_one_line(ray_local, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a real GPU: the trial would train on it")
    wait_idle(ray_local)
    cells = expand(write_tiny_sweeps(tmp_path / "s.yaml", [0.5], epochs=1), "s", "t")[:1]
    options = RunOptions(profile="t", progress=False, gpus_per_trial=1, max_failures=0, probe=False)
    summary = run_sweep(cells, Store(tmp_path / "store"), options)  # the real trainer
    assert (summary.done, summary.failed) == (0, 1)
    [error] = summary.failures.values()
    assert error.startswith("RuntimeError: this trial was given GPU ")
    assert "torch sees no CUDA device" in error and "\n" not in error

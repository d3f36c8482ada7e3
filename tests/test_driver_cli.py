"""`rstsweep run` as a user runs it: real processes, a real local Ray, the real trainer, tiny cells.

- bad input (YAML, profile, resources) exits 2 with one line, before Ray starts, store untouched;
- the driver SIGKILLed mid-sweep, then `rstsweep run` again: every cell exactly once, none lost,
  the cells finished before the kill not re-run;
- a trial's worker killed right after its epoch-1 checkpoint is retried from that checkpoint.
"""

from __future__ import annotations

import json
import shutil
import signal
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from processes import cli_command, cli_process, kill_when, ray_env
from rstsweep.sweeper.live import read_events
from tiny_sweeps import write_tiny_sweeps


@pytest.fixture
def ray_dir():
    """Ray's temp dir for the test (not created: Ray creates it when it starts). Short, under /tmp:
    Ray's Unix sockets live there and their paths may not exceed 107 bytes."""
    parent = Path(tempfile.mkdtemp(prefix="rst-", dir="/tmp"))
    yield parent / "ray"
    shutil.rmtree(parent, ignore_errors=True)


def run_cli(tmp_path: Path, ray_dir: Path, *args: str | Path, timeout: float = 180, **env: str):
    return cli_process(*args, cwd=tmp_path, timeout=timeout, env=ray_env(ray_dir, **env))


def raw_trials(store: Path) -> pd.DataFrame:
    """Every trials row on disk, without the reader's dedup (a re-run cell would show twice)."""
    files = sorted((store / "trials").glob("part-*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def run_events(store: Path) -> list[list[dict]]:
    """The event log of each run, oldest first."""
    return [read_events(d / "events.jsonl") for d in sorted((store / ".scratch/runs").iterdir())]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "nosuch"], "profile"),
        (["--gpus-per-trial", "1.5"], "--gpus-per-trial: 1.5 > 1 must be a whole number of GPUs"),
        (["--cpus-per-trial", "0"], "--cpus-per-trial: 0 must be > 0"),
        (["--max-concurrent", "0"], "--max-concurrent: 0 must be >= 1"),
        (
            ["--cpus-per-trial", "512"],
            "resources: a trial asks for 512 CPU + 0 GPU but this machine",
        ),
        (
            ["--num-gpus", "1", "--gpus-per-trial", "2"],
            "one trial of 2 workers needs 2 CPU + 2 GPU",
        ),
        (["--bad-yaml"], "sweeps.s.groups.constant.grid.a_c[1]: "),
        (["--address", "127.0.0.1:1"], "--address 127.0.0.1:1: no Ray cluster answers there"),
        # a data directory that is a file: not found, and no download can land there either
        (["--data-dir", "s.yaml"], "dataset: fashion-mnist not found in "),
    ],
)
def test_bad_input_exits_2_before_ray_and_leaves_the_store_untouched(
    tmp_path, ray_dir, args, message
):
    sweeps = write_tiny_sweeps(tmp_path / "s.yaml", [0.5], epochs=1)
    if args == ["--bad-yaml"]:
        sweeps = write_tiny_sweeps(tmp_path / "s.yaml", [0.5, 1.5], epochs=1)  # a_c = 1.5 > 1
        args = []
    done = run_cli(
        tmp_path, ray_dir, "run", "s", "--file", sweeps, "--profile", "t", "--store", "st", *args
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rstsweep: error: "), done.stderr
    assert message in lines[0]
    assert not (tmp_path / "st").exists()
    assert not ray_dir.exists()  # Ray never started


@pytest.mark.slow
def test_driver_sigkilled_mid_sweep_then_rerun_runs_every_cell_exactly_once(tmp_path, ray_dir):
    sweeps = write_tiny_sweeps(tmp_path / "s.yaml", [0.2, 0.4, 0.6, 0.8], epochs=2)
    store = tmp_path / "st"
    args = ("run", "s", "--file", sweeps, "--profile", "t", "--store", store, "--no-progress")
    proc = kill_when(
        cli_command(*args),
        lambda: bool(list((store / "trials").glob("part-*.parquet"))),
        log=tmp_path / "first.log",
        waiting_for="finished cell",
        group=True,  # its own process group: Ray's processes die with it
        cwd=tmp_path,
        env=ray_env(ray_dir),
    )
    first_log = (tmp_path / "first.log").read_text()
    assert proc.returncode == -signal.SIGKILL, first_log
    early = raw_trials(store)
    assert 1 <= len(early) < 5, f"the kill should land mid-sweep: {len(early)} rows\n{first_log}"
    beat = json.loads((store / "heartbeat.json").read_text())  # left behind by the dead driver
    assert beat["pid"] == proc.pid and beat["sweep"] == "s"

    second = run_cli(tmp_path, ray_dir, *args)
    assert second.returncode == 0, second.stdout + second.stderr
    expected = f"5 cells: {5 - len(early)} run now, {len(early)} already done, 0 failed"
    assert expected in second.stdout, second.stdout + second.stderr

    rows = raw_trials(store)
    assert rows["cell_id"].is_unique and len(rows) == 5  # every cell exactly once, none lost
    recorded = set(pd.read_parquet(store / "cells")["cell_id"])
    assert set(rows["cell_id"]) == recorded
    kept = rows.set_index("cell_id").loc[early["cell_id"], ["attempt_id", "finished_at"]]
    pd.testing.assert_frame_equal(kept, early.set_index("cell_id")[["attempt_id", "finished_at"]])
    started_again = {e["cell_id"] for e in run_events(store)[-1] if e["event"] == "start"}
    assert started_again == set(rows["cell_id"]) - set(early["cell_id"])
    assert not (store / "heartbeat.json").exists()


@pytest.mark.slow
def test_trial_killed_mid_trial_is_retried_from_its_epoch_checkpoint(tmp_path, ray_dir):
    sweeps = write_tiny_sweeps(tmp_path / "s.yaml", [0.5], epochs=3)
    marker = tmp_path / "crashed"
    store = tmp_path / "st"
    done = run_cli(
        tmp_path,
        ray_dir,
        *("run", "s", "--file", sweeps, "--profile", "t", "--store", store, "--no-progress"),
        *("--max-concurrent", "1"),
        RSTSWEEP_TEST_CRASH_ONCE=str(marker),
    )
    assert done.returncode == 0, done.stderr
    assert "2 cells: 2 run now" in done.stdout
    killed_pid = int(marker.read_text().split()[0])  # the worker that died after epoch 1
    [events] = run_events(store)
    [retry] = [e for e in events if e["event"] == "retry"]
    cid = retry["cell_id"]
    epochs = [
        (e["epoch"], e["pid"]) for e in events if e["event"] == "epoch" and e["cell_id"] == cid
    ]
    assert epochs[0] == (1, killed_pid)
    assert [epoch for epoch, _ in epochs] == [1, 2, 3]  # the retry began at epoch 2
    assert killed_pid not in {pid for _, pid in epochs[1:]}
    assert [e["start_epoch"] for e in events if e["event"] == "done" and e["cell_id"] == cid] == [1]
    trials = raw_trials(store)
    assert trials["cell_id"].is_unique and len(trials) == 2
    epochs_table = pd.read_parquet(store / "epochs")
    mine = epochs_table[epochs_table["cell_id"] == cid]
    attempt = trials.set_index("cell_id").loc[cid, "attempt_id"]
    assert sorted(mine[mine["attempt_id"] == attempt]["epoch"]) == [1, 2, 3]
    assert trials.set_index("cell_id").loc[cid, "steps"] == 3 * (256 // 64)


@pytest.mark.slow
def test_driver_killed_mid_cell_then_rerun_resumes_that_cell_from_its_epoch_checkpoint(
    tmp_path, ray_dir
):
    # two cells of four ~1 s epochs, so the kill lands mid-cell
    sweeps = write_tiny_sweeps(tmp_path / "s.yaml", [0.5], epochs=4, train_subset=2048)
    args = ("run", "s", "--file", sweeps, "--profile", "t", "--no-progress", "--store")
    cells_dir = tmp_path / "st" / ".scratch" / "cells"
    kill_when(
        cli_command(*args, tmp_path / "st"),
        lambda: bool(list(cells_dir.glob("*/epoch"))),  # some cell has an epoch checkpoint
        log=tmp_path / "first.log",
        waiting_for="epoch checkpoint",
        group=True,
        cwd=tmp_path,
        env=ray_env(ray_dir),
    )
    interrupted = {p.parent.name for p in cells_dir.glob("*/checkpoint.pt")}
    done_before = (
        set(raw_trials(tmp_path / "st")["cell_id"]) if (tmp_path / "st/trials").exists() else set()
    )
    interrupted -= done_before
    assert interrupted, (tmp_path / "first.log").read_text()

    second = run_cli(tmp_path, ray_dir, *args, tmp_path / "st")
    assert second.returncode == 0, second.stdout + second.stderr
    events = run_events(tmp_path / "st")[-1]
    resumed = {e["cell_id"]: e["start_epoch"] for e in events if e["event"] == "done"}
    assert all(resumed[cid] >= 1 for cid in interrupted), resumed  # not from scratch
    assert not list(cells_dir.glob("*/checkpoint.pt"))  # finished cells clean up after themselves

    # the resumed cells end exactly where an uninterrupted run ends
    clean = run_cli(tmp_path, ray_dir, *args, tmp_path / "clean")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    cols = ["test_loss", "test_error", "train_loss", "sa_steps", "steps"]
    got = raw_trials(tmp_path / "st").set_index("cell_id").sort_index()[cols]
    want = raw_trials(tmp_path / "clean").set_index("cell_id").sort_index()[cols]
    pd.testing.assert_frame_equal(got, want)

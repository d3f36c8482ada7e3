"""Progress as plain log lines when stderr is not a terminal: the line format (fake clock) and a
real `rstsweep run` with stderr to a file (one line per finished / failed cell, periodic
summaries), which `grep` can follow; the same run feeds all three trackers, read back."""

from __future__ import annotations

import io
import re
import shlex
import subprocess

import pandas as pd
import pytest

from processes import cli_command, ray_env
from rstsweep.sweeper.live import SweepProgress
from rstsweep.sweeper.loglines import LogLines
from tiny_sweeps import write_tiny_sweeps
from trackers_read import mlflow_runs, tensorboard_scalars, wandb_offline_runs

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def fields(line: str) -> tuple[str, dict[str, str]]:
    """(event, {key: value}) of one log line; checks the line's shape."""
    prog, stamp, event, *rest = shlex.split(line)
    assert prog == "rstsweep" and STAMP.match(stamp), line
    assert all(re.match(r"^\w+=", token) for token in rest), line
    return event, dict(token.split("=", 1) for token in rest)


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def test_lines_for_cells_and_a_summary_only_when_due():
    clock, out = Clock(), io.StringIO()
    lines = LogLines(out, every_s=30, clock=clock)
    members = [("sgd", "a"), ("constant", "b"), ("constant", "c"), ("sam", "c")]
    progress = SweepProgress(members, set(), sweep="s", profile="t", lines=lines, clock=clock)
    with progress:
        progress.start("a")
        progress.start("b")
        clock.t += 12.5
        progress.finish("a", "ok")
        progress.tick()  # 12.5 s since the first summary: not due
        clock.t += 20
        progress.fail("b", "ValueError: boom here")
        progress.tick()  # 32.5 s: due
    events = [fields(line) for line in out.getvalue().splitlines()]
    assert [e for e, _ in events] == [
        "start",
        "progress",
        "done",
        "failed",
        "progress",
        "progress",
        "end",
    ]
    assert events[0][1] == {"sweep": "s", "profile": "t", "cells": "3", "already_done": "0"}
    assert events[2][1] == {"cell": "a", "group": "sgd", "time_s": "12.5", "status": "ok"}
    assert events[3][1] == {
        "cell": "b",
        "group": "constant",
        "time_s": "32.5",
        "error": "ValueError: boom here",
    }
    summary = events[4][1]
    assert summary["done"] == "1/3" and summary["failed"] == "1" and summary["pending"] == "1"
    assert summary["elapsed_s"] == "32.5"
    # one done cell took 12.5 s; one pending cell, nothing running: 12.5 s to go
    assert summary["eta_s"] == "12.5"


def test_a_cell_in_two_groups_names_both():
    clock, out = Clock(), io.StringIO()
    progress = SweepProgress(
        [("constant", "c"), ("sam", "c")],
        set(),
        sweep="s",
        profile="t",
        lines=LogLines(out, clock=clock),
        clock=clock,
    )
    progress.start("c")
    clock.t += 90
    progress.finish("c", "diverged")
    assert out.getvalue().strip().endswith("group=constant,sam time_s=90 status=diverged")


@pytest.mark.slow
def test_run_with_stderr_to_a_file_writes_greppable_lines(tmp_path):
    import shutil
    import tempfile
    from pathlib import Path

    ray_dir = Path(tempfile.mkdtemp(prefix="rst-", dir="/tmp")) / "ray"
    sweeps = write_tiny_sweeps(tmp_path / "s.yaml", [0.5], epochs=1)
    log = tmp_path / "run.log"
    try:
        with open(log, "w") as err:
            done = subprocess.run(
                cli_command(
                    "run",
                    "s",
                    "--file",
                    sweeps,
                    "--profile",
                    "t",
                    "--store",
                    tmp_path / "st",
                    "--max-failures",
                    "0",
                    "--max-concurrent",
                    "1",
                    *("--tracker", "tensorboard", "--tracker", "mlflow", "--tracker", "wandb"),
                ),
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                timeout=240,
                cwd=tmp_path,
                # the first trial's worker dies after its epoch; with no retries it fails
                env=ray_env(
                    ray_dir,
                    RSTSWEEP_LOG_EVERY="1",
                    RSTSWEEP_TEST_CRASH_ONCE=str(tmp_path / "c"),
                    MLFLOW_TRACKING_URI=(tmp_path / "mlruns").as_uri(),
                    MLFLOW_ALLOW_FILE_STORE="true",
                    WANDB_MODE="offline",
                    WANDB_SILENT="true",
                ),
            )
    finally:
        shutil.rmtree(ray_dir.parent, ignore_errors=True)
    text = log.read_text()
    assert done.returncode == 1, done.stdout + text
    ours = [fields(line) for line in text.splitlines() if line.startswith("rstsweep 2")]
    kinds = [e for e, _ in ours]
    assert kinds[0] == "start" and kinds[-1] == "end"
    [finished] = [f for e, f in ours if e == "done"]
    [failed] = [f for e, f in ours if e == "failed"]
    assert {finished["group"], failed["group"]} == {"sgd", "constant"}
    assert finished["status"] == "ok" and float(finished["time_s"]) > 0
    assert "died" in failed["error"]
    summaries = [f for e, f in ours if e == "progress"]
    assert len(summaries) >= 3  # start, at least one periodic (1 s apart), end
    assert summaries[-1]["done"] == "1/2" and summaries[-1]["failed"] == "1"
    assert "\x1b[" not in text  # no terminal control codes in a log file
    assert "warning" not in text, text

    # every tracker saw the finished cell's epoch and both cells' runs
    [run_dir] = (tmp_path / "st/tensorboard/s").glob(f"*/*_{finished['cell']}")
    scalars = tensorboard_scalars(run_dir)
    assert [s for s, _ in scalars["test/error"]] == [1]
    trials = pd.read_parquet(tmp_path / "st/trials")
    stored = float(trials.set_index("cell_id").loc[finished["cell"], "test_error"])
    assert scalars["test/error"][0][1] == pytest.approx(stored, rel=1e-6)
    runs = mlflow_runs((tmp_path / "mlruns").as_uri(), "rstsweep-s")
    by_cell = {r["tags"]["cell_id"]: r for r in runs.values()}
    assert by_cell[finished["cell"]]["status"] == "FINISHED"
    assert by_cell[failed["cell"]]["status"] == "FAILED"
    assert by_cell[finished["cell"]]["metrics"]["test/error"] == [(1, pytest.approx(stored))]
    wb = {r["config"]["cell_id"]: r for r in wandb_offline_runs(tmp_path / "st").values()}
    assert wb[finished["cell"]]["history"][0]["test/error"] == pytest.approx(stored)

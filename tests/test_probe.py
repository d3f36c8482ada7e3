"""Step-cost probes: `measure_steps` on the real trainer pieces, the probe budget, the cache in
the store's `probes` table, and `rstsweep plan` estimates on a fresh store (shown as estimates)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rstsweep.core.catalog import cell_steps
from rstsweep.core.config import CellConfig
from rstsweep.sweeper.estimates import resource_line, worth_probing
from rstsweep.sweeper.options import Placement

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps.yaml"


def tiny(algorithm: str, **extra) -> CellConfig:
    schedule = "constant(0)" if algorithm == "sgd" else "constant(1)"
    return CellConfig(
        model="fastcnn",
        dataset="fashion-mnist",
        algorithm=algorithm,
        schedule=schedule,
        batch_size=16,
        width=4,
        threads=1,
        **extra,
    )


def test_resource_line_turns_serial_time_into_device_hours_and_wall_time():
    # 7200 s one at a time at 0.5 GPU per trial: 1 GPU-hour; 4 slots: 30 min wall
    line = resource_line(7200, Placement(cpus=4, gpus=0.5, slots=4))
    assert line == "1.0 GPU-hours; wall ≈ 30.0 min on 4 concurrent trial(s)"
    assert resource_line(3600, Placement(cpus=2, slots=1)).startswith("2.0 CPU-hours")


def test_probing_is_worth_it_only_when_it_costs_under_a_percent_of_the_sweep():
    small = tiny("sam", epochs=1, train_subset=256)  # 16 steps
    assert cell_steps(small) == 16
    assert not worth_probing([small])
    # one setting: 2 branches × 7 steps = 14 probe steps < 1% of 1600 steps
    assert worth_probing([tiny("sam", epochs=100, train_subset=256)] * 1)
    assert not worth_probing([tiny("sam", epochs=80, train_subset=256)])  # 1280 × 1% < 14


@pytest.mark.slow
def test_measure_steps_times_both_branches():
    from rstsweep.trainers.probe import measure_steps

    sam = measure_steps(tiny("sam"), steps=2)
    assert set(sam) >= {"sgd_step_s", "sa_step_s", "peak_memory_bytes"}
    assert sam["sgd_step_s"] > 0 and sam["sa_step_s"] > 0
    assert sam["peak_memory_bytes"] > 0 and sam["device"] == "cpu"  # CPU: the peak RSS
    sgd = measure_steps(tiny("sgd"), steps=2)
    assert sgd["sa_step_s"] is None and sgd["sgd_step_s"] > 0


def plan(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [
            sys.executable,
            "-m",
            "rstsweep.cli",
            "plan",
            "baselines",
            "--file",
            str(SWEEPS),
            "--profile",
            "ci",
            "--store",
            str(tmp_path / "st"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=dict(os.environ, COLUMNS="200", **env),
    )


@pytest.mark.slow
def test_plan_on_a_fresh_store_probes_once_then_uses_the_cache(tmp_path):
    first = plan(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "probed 2 setting(s) on cpu" in first.stdout
    assert "estimated time (from step-cost probes: estimates, not measurements)" in first.stdout
    assert "CPU-hours; wall ≈" in first.stdout
    probes = pd.read_parquet(tmp_path / "st/probes")
    assert sorted(probes["algorithm"]) == ["sam", "sgd"]
    assert (probes["sgd_step_s"] > 0).all() and probes["device"].eq("cpu").all()
    assert (
        probes.set_index("algorithm").loc["sgd", "sa_step_s"]
        != probes.set_index("algorithm").loc["sgd", "sa_step_s"]
    )  # NaN: SGD has no SA branch
    assert probes["width"].eq(8).all() and probes["batch_size"].eq(64).all()
    second = plan(tmp_path)
    assert second.returncode == 0 and "probed" not in second.stdout
    assert "from step-cost probes" in second.stdout
    assert len(list((tmp_path / "st/probes").glob("*.parquet"))) == 1  # nothing probed again


@pytest.mark.slow
def test_no_probe_and_an_exhausted_budget_leave_no_estimate(tmp_path):
    off = plan(tmp_path, "--no-probe")
    assert off.returncode == 0 and "no measurements yet" in off.stdout
    assert not (tmp_path / "st").exists()  # --no-probe: plan reads only
    broke = plan(tmp_path, RSTSWEEP_PROBE_BUDGET_S="0.001")
    assert broke.returncode == 0, broke.stderr
    assert "not probed: fastcnn/fashion-mnist/sgd/64: over the 0 s probe budget" in broke.stdout
    assert "no measurements yet" in broke.stdout
    assert not (tmp_path / "st/probes").exists()

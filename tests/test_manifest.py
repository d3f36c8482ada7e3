"""The reproducibility manifest, peak memory and skipped steps of a trained cell, as columns of its
trial row read back from a real store; `--deterministic` turning the flags on (and a later cell
turning them off again); the GPU memory share of packed trials; the step probe; and the planner's
trials-per-GPU suggestion."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from factories import tiny_fields
from rstsweep.core.config import CellConfig
from rstsweep.core.result import MANIFEST_KEYS
from rstsweep.store.store import Store
from rstsweep.sweeper import plan as plan_module
from rstsweep.sweeper.resources import memory_share
from rstsweep.sweeps import Cell
from rstsweep.trainers.loop import train
from rstsweep.trainers.memory import apply_memory_fraction, peak_memory_bytes, reset_peak_memory
from rstsweep.trainers.probe import measure_steps, time_branches
from rstsweep.trainers.runtime import CUBLAS_WORKSPACE, set_deterministic

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
TINY = tiny_fields(seed=1, schedule="constant(0.5)")


@pytest.fixture
def restore_determinism(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    yield
    set_deterministic(False)


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout


def test_trained_cell_row_carries_manifest_memory_and_skipped_steps(tmp_path, restore_determinism):
    config = CellConfig(**TINY, precision="fp16", deterministic=True)
    result = train(config)
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE
    cell = Cell("s", "g", "a", None, config, config.cell_id())
    store = Store(tmp_path / "store")
    store.write_result(cell, result, "ci")
    row = store.read("trials").iloc[0]
    assert set(MANIFEST_KEYS) <= set(row.index)
    assert row["torch_version"] == torch.__version__
    assert row["cuda_version"] == torch.version.cuda  # the build's CUDA, even on a CPU run
    assert row["device_type"] == "cpu" and isinstance(row["device_name"], str)
    assert row["device_count"] == torch.cuda.device_count()
    assert pd.isna(row["device_memory_bytes"])  # no GPU memory on a CPU run
    assert row["precision"] == "fp16" and row["deterministic"] and not row["compiled"]
    assert row["skipped_steps"] == result.skipped_steps >= 0
    assert 50 * 2**20 < row["peak_memory_bytes"] < 64 * 2**30  # a CPU peak RSS, in bytes
    # the tests run from the project's checkout: its HEAD and whether tracked files changed
    assert row["git_commit"] == git("rev-parse", "HEAD").strip()
    assert bool(row["git_dirty"]) == bool(git("status", "--porcelain", "--untracked-files=no"))


def test_deterministic_flag_from_the_cli_and_off_again(cli_main, restore_determinism):
    options = [part for k, v in TINY.items() for part in ("--set", f"{k}={v}")]
    code, out, _ = cli_main("train", *options, "--deterministic", "--json")
    assert code == 0
    assert '"deterministic": true' in out
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE
    set_deterministic(False)  # what the next (non-deterministic) cell in this process does
    assert not torch.are_deterministic_algorithms_enabled()


def test_memory_share_of_packed_trials_and_the_cpu_no_op(monkeypatch):
    assert memory_share(0.25) == 0.25 and memory_share(0.5) == 0.5
    assert memory_share(0.0) is None and memory_share(1.0) is None and memory_share(2.0) is None
    calls = []
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", lambda *a: calls.append(a))
    assert apply_memory_fraction(0.25, torch.device("cpu")) is None and calls == []
    assert apply_memory_fraction(None, torch.device("cuda")) is None and calls == []
    assert apply_memory_fraction(0.25, torch.device("cuda:1")) == 0.25
    assert calls == [(0.25, 1)]


def test_trial_passes_its_gpu_share_as_the_memory_cap(monkeypatch):
    from rstsweep.sweeper import trial

    monkeypatch.setattr(trial, "_assigned_gpus", lambda: 0.25)
    config = trial.with_threads(CellConfig(), threads=2)
    assert (config.memory_fraction, config.threads) == (0.25, 2)
    assert config.cell_id() == CellConfig().cell_id()
    monkeypatch.setattr(trial, "_assigned_gpus", lambda: 1.0)
    assert trial.with_threads(CellConfig(), threads=None).memory_fraction is None


def test_cpu_peak_memory_sees_a_large_allocation():
    reset_peak_memory(torch.device("cpu"))
    before = peak_memory_bytes(torch.device("cpu"))
    block = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
    assert peak_memory_bytes(torch.device("cpu")) >= before + 60 * 2**20
    del block


def test_time_branches_runs_warmup_and_timed_steps_per_branch():
    calls = []
    out = time_branches(calls.append, torch.device("cpu"), steps=3, warmup=2)
    assert calls == [False] * 5 + [True] * 5
    assert out["sgd_step_s"] >= 0 and out["sa_step_s"] >= 0 and out["device_memory_bytes"] is None


def test_measure_steps_times_the_real_step_on_synthetic_data():
    config = CellConfig(**{**TINY, "dataset": "cifar100", "batch_size": 16})
    out = measure_steps(config, steps=2, warmup=1)
    assert out["sgd_step_s"] > 0 and out["sa_step_s"] > 0 and out["peak_memory_bytes"] > 0
    assert (out["model"], out["dataset"], out["precision"]) == ("fastcnn", "cifar100", "fp32")
    sgd = measure_steps(CellConfig(**{**TINY, "algorithm": "sgd"}), steps=1, warmup=1)
    assert sgd["sa_step_s"] is None


def test_plan_suggests_trials_per_gpu_from_recorded_gpu_peaks(capsys):
    gib = 2**30
    # need = 1.2 × peak + 0.75 GiB: 2 GiB -> 3.15 GiB, so 25 fit into 80 GiB
    assert plan_module.trials_per_gpu(2 * gib, 80 * gib) == 25
    assert plan_module.trials_per_gpu(100 * gib, 80 * gib) == 1
    trials = pd.DataFrame(
        {
            "model": ["resnet18", "resnet18", "resnet18"],
            "dataset": ["cifar10"] * 3,
            "batch_size": [256] * 3,
            "device_type": ["cuda", "cuda", "cpu"],
            "peak_memory_bytes": [1.5 * gib, 2 * gib, 50 * gib],  # the CPU row is ignored
            "device_memory_bytes": [80 * gib, 80 * gib, None],
        }
    )
    assert plan_module.packing(trials) == {("resnet18", "cifar10", 256): (2 * gib, 80 * gib, 25)}
    plan = plan_module.SweepPlan("s", "paper", [], ["resnet18"], ["cifar10"], 1)
    plan.packing = plan_module.packing(trials)
    plan_module.print_plan(plan, None)
    out = " ".join(capsys.readouterr().out.split())
    assert "resnet18 × cifar10 × 256: peak 2.0 of 80 GiB, ~25 trials per GPU" in out
    assert "(--gpus-per-trial 0.04)" in out

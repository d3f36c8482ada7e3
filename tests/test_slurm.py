"""`rstsweep slurm`: the sbatch script it writes (Ray's SLURM pattern, token auth, the same run
settings, requeue), its bad input, and a `ci` sweep run to completion through sbatch on a real
single-node SLURM started by the test (skipped, saying why, where SLURM cannot start)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from factories import invoke_cli
from rstsweep.errors import RstError
from rstsweep.sweeps import expand
from slurm_local import local_slurm

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps.yaml"


def write(tmp_path: Path, *args: str) -> tuple[str, str]:
    out = tmp_path / "job.sbatch"
    result = invoke_cli(
        "slurm", "baselines", "--file", SWEEPS, "--profile", "ci", "--out", out, *args
    )
    if result.exit_code == 2:  # a user error: one line on stderr, as the console script prints it
        (line,) = result.stderr.strip().splitlines()
        raise RstError(line.removeprefix("rstsweep: error: "))
    if result.exception:
        raise result.exception
    return out.read_text(), result.output


def test_script_follows_rays_slurm_pattern_with_the_run_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text, output = write(
        tmp_path,
        *("--nodes", "3", "--gpus-per-node", "4", "--cpus-per-node", "32", "--partition", "gpu"),
        *("--time", "12:00:00", "--store", "res", "--gpus-per-trial", "0.5"),
        *("--max-concurrent", "8", "--tracker", "mlflow"),
    )
    assert "wrote" in output and "(2 cells on 3 node(s))" in output
    sbatch = [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("#SBATCH")]
    assert sbatch == [
        "--job-name=rstsweep-baselines",
        "--nodes=3",
        "--ntasks-per-node=1",
        "--requeue",
        f"--chdir={tmp_path}",
        "--output=rstsweep-%x-%j.log",
        "--open-mode=append",
        "--cpus-per-task=32",
        "--gpus-per-task=4",
        "--partition=gpu",
        "--time=12:00:00",
    ]
    assert "requeue are safe" in text
    assert "export RAY_AUTH_MODE=token" in text and "export RAY_AUTH_TOKEN" in text
    assert '"$RAY" start --head' in text and 'start --address="$address"' in text
    [driver] = [line for line in text.splitlines() if "rstsweep.cli run" in line]
    assert driver.endswith('--address "$address"')
    assert f"--file {SWEEPS} --profile ci --store {tmp_path / 'res'}" in driver
    assert "--gpus-per-trial 0.5 --max-failures 2 --max-concurrent 8 --tracker mlflow" in driver
    assert f"PYTHON={sys.executable}" in text
    subprocess.run(["bash", "-n", str(tmp_path / "job.sbatch")], check=True)  # valid bash


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--nodes", "0"], "--nodes: 0 must be >= 1"),
        (["--profile", "nosuch"], "profile"),
        (["--tracker", "tb"], "--tracker: 'tb' is not one of"),
    ],
)
def test_bad_input_is_a_user_error_and_writes_nothing(tmp_path, args, message):
    with pytest.raises(RstError, match=message):
        write(tmp_path, *args)
    assert not (tmp_path / "job.sbatch").exists()


def test_submit_without_sbatch_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch here
    with pytest.raises(RstError, match="--submit: sbatch not found on PATH"):
        write(tmp_path, "--submit")


@pytest.mark.slow
def test_ci_sweep_runs_to_completion_through_sbatch(tmp_path):
    with local_slurm() as env:
        store = tmp_path / "st"
        env.update(
            RAY_USAGE_STATS_ENABLED="0",
            OMP_NUM_THREADS="1",
            RSTSWEEP_RAY_TMPDIR=str(Path(env["RSTSWEEP_TEST_SLURM_ROOT"]) / "ray"),
            PYTHONPATH=":".join(sys.path),  # the job imports this checkout's rstsweep
        )
        env.pop("RAY_ADDRESS", None)
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "rstsweep.cli",
                "slurm",
                "baselines",
                "--file",
                str(SWEEPS),
                "--profile",
                "ci",
                "--store",
                str(store),
                "--out",
                "job.sbatch",
                "--submit",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        job = done.stdout.split("submitted job ")[1].strip()
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            queued = subprocess.run(
                ["squeue", "-h", "-j", job, "-o", "%T"], env=env, capture_output=True, text=True
            ).stdout.strip()
            if not queued:
                break
            time.sleep(1)
        log = (tmp_path / f"rstsweep-rstsweep-baselines-{job}.log").read_text()
        assert not queued, f"job {job} still {queued}\n{log}"
    assert "baselines (ci): 2 cells: 2 run now, 0 already done, 0 failed, 0 pending" in log, log
    assert "rstsweep-slurm: Ray head on" in log
    trials = pd.read_parquet(store / "trials")
    expected = {c.cell_id for c in expand(SWEEPS, "baselines", "ci")}
    assert set(trials["cell_id"]) == expected and len(trials) == 2
    assert set(trials["status"]) == {"ok"}


def test_gpu_nodes_imply_gpu_trials(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text, _ = write(tmp_path, "--gpus-per-node", "8")
    [driver] = [line for line in text.splitlines() if "rstsweep.cli run" in line]
    assert "--gpus-per-trial 1 " in driver and "--gpus-per-trial 0 " not in driver
    text, _ = write(tmp_path, "--cpus-per-node", "16")  # CPU nodes: CPU trials
    [driver] = [line for line in text.splitlines() if "rstsweep.cli run" in line]
    assert "--gpus-per-trial 0 " in driver

"""`rstsweep train`: the JSON summary, one-line user errors, and kill -9 + `--resume` giving the
same final weights and metrics as an uninterrupted run (a real process, really killed)."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys

import pytest
import torch

from factories import tiny_config, tiny_fields
from processes import kill_when
from rstsweep.core.config import CellConfig
from rstsweep.trainers.loop import train

torch.set_num_threads(1)

TINY_ARGS = [
    "--model", "fastcnn", "--set", "width=4", "--dataset", "fashion-mnist",
    "--set", "train_subset=256", "--set", "test_subset=128", "--set", "batch_size=64",
    "--epochs", "1", "--seed", "2", "--device", "cpu", "--set", "threads=1",
]  # fmt: skip


def test_json_summary(tmp_path, cli_main):
    args = ["train", *TINY_ARGS, "--schedule", "constant(0.5)", "--json", "--out", str(tmp_path)]
    code, out, err = cli_main(*args)
    assert code == 0, err
    summary = json.loads(out)  # stdout holds the JSON only (no progress bar with --json)
    config = tiny_config(seed=2, schedule="constant(0.5)")  # runtime fields: not in the id
    assert summary["cell_id"] == config.cell_id()
    assert summary["status"] == "ok" and summary["error"] is None
    assert summary["steps"] == 4 and summary["realized_extra"] == summary["sa_steps"] / 4
    assert summary["expected_extra"] == pytest.approx(0.5)
    assert 0 <= summary["test_error"] <= 1 and "draws" not in summary and "epochs" not in summary
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "final.pt").exists()


def test_human_summary(cli_main):
    code, out, _ = cli_main("train", *TINY_ARGS, "--algorithm", "sgd")
    assert code == 0
    assert "status ok" in out and "SA steps 0" in out and "test error" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--algorithm", "nosuch"], "algorithm:"),
        (["--schedule", "constant(1.5)"], "schedule"),
        (["--epochs", "0"], "epochs:"),
        (["--resume"], "--resume: needs --out"),
        (["--model", "nosuch"], "nosuch"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(args, message, cli_main):
    code, out, err = cli_main("train", *TINY_ARGS, *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


def file_hash(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def weights_hash(path) -> str:
    state = torch.load(path, weights_only=True)
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].cpu().numpy().tobytes())
    return digest.hexdigest()


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path):
    """Start `rstsweep train --out DIR`, SIGKILL it once epoch 1's checkpoint exists, resume with
    `--resume`: final weights (hash) and test metrics equal those of an uninterrupted run."""
    options = tiny_fields(
        train_subset=1024, test_subset=256, epochs=3, seed=4, schedule="constant(0.5)",
        algorithm="sam",
    )  # fmt: skip
    args = [sys.executable, "-m", "rstsweep", "train"]
    for key, value in options.items():
        args += ["--set", f"{key}={value}"]
    out = tmp_path / "killed"
    checkpoint = out / "checkpoint.pt"
    proc = kill_when(
        [*args, "--out", str(out), "--json"],
        checkpoint.exists,
        log=tmp_path / "killed.log",
        waiting_for="first checkpoint",
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "final.pt").exists(), "killed too late: the run had finished"
    killed_at = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 1 <= killed_at < options["epochs"]

    resumed = subprocess.run(
        [*args, "--out", str(out), "--resume", "--json"], capture_output=True, text=True, check=True
    )
    summary = json.loads(resumed.stdout)

    config = CellConfig(**options)
    straight = train(config, out_dir=tmp_path / "straight")
    assert summary["cell_id"] == straight.cell_id
    assert weights_hash(out / "final.pt") == weights_hash(tmp_path / "straight" / "final.pt")
    for key in ("steps", "sa_steps", "test_loss", "test_error", "train_loss", "train_error"):
        assert summary[key] == getattr(straight, key), key

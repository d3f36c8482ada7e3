"""The command line derived from CellConfig: `--set KEY=VALUE` (train, run, plan), `rstsweep
fields`, `--version` and `python -m rstsweep`. In-process through typer's CliRunner, except the
`python -m` check, which needs a real process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import rstsweep
from factories import tiny_fields
from rstsweep.core.config import CellConfig
from rstsweep.core.fields import describe_fields, parse_assignments
from rstsweep.errors import RstError
from rstsweep.sweeps import expand

TINY = [
    "--model", "fastcnn", "--dataset", "fashion-mnist", "--epochs", "1", "--seed", "1",
    "--device", "cpu", "--set", "width=4", "--set", "train_subset=128",
    "--set", "test_subset=64", "--set", "batch_size=64", "--set", "threads=1",
]  # fmt: skip
TINY_CONFIG = tiny_fields(train_subset=128, test_subset=64, seed=1)  # the config TINY asks for


def one_error_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.stderr
    assert result.stdout == "" and len(lines) == 1 and lines[0].startswith("rstsweep: error: ")
    return lines[0].removeprefix("rstsweep: error: ")


# ----------------------------------------------------------------------------- --set parsing


def test_set_values_are_yaml_scalars() -> None:
    parsed = parse_assignments(
        ["looksam_k=3", "lr=0.05", "nesterov=false", "grad_clip=null", "looksam-alpha=1",
         "schedule=piecewise(a=0, b=0.3)", "device=cuda:1", "data_dir=/tmp/x y"]
    )  # fmt: skip
    assert parsed == {
        "looksam_k": 3, "lr": 0.05, "nesterov": False, "grad_clip": None, "looksam_alpha": 1,
        "schedule": "piecewise(a=0, b=0.3)", "device": "cuda:1", "data_dir": "/tmp/x y",
    }  # fmt: skip
    assert type(parsed["looksam_k"]) is int and type(parsed["lr"]) is float


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["nosuch=1"], "--set nosuch: unknown key (not a field; `rstsweep fields` lists them)"),
        (["looksam=1"], "--set looksam: unknown key (did you mean 'looksam_k'?"),
        (["epochs"], "--set 'epochs': expected KEY=VALUE"),
        (["epochs=1", "epochs=2"], "--set epochs: given twice"),
    ],
)
def test_bad_set_items(items: list[str], message: str) -> None:
    with pytest.raises(RstError) as info:
        parse_assignments(items)
    assert str(info.value).startswith(message)


# ----------------------------------------------------------------------------- rstsweep fields


def test_fields_lists_every_field_with_type_range_and_default(cli) -> None:
    result = cli("fields")
    assert result.exit_code == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(rows) == set(CellConfig.model_fields)
    assert rows["looksam_k"].split()[:4] == ["looksam_k", "int", ">=", "1"]
    assert "(0.0, 1.0]" in rows["mask_fraction"] and "[0.0, 1.0)" in rows["momentum"]
    assert "sgd|adam|adamw" in rows["optimizer"] and "looksam" in rows["algorithm"]
    assert "runtime: not in cell_id" in rows["device"] and "not in cell_id" not in rows["lr"]
    defaults = {f.name: f.default for f in describe_fields()}
    assert defaults["grad_clip"] == "5.0" and defaults["width"] == "null"
    assert defaults["nesterov"] == "true" and defaults["schedule"] == "constant(1)"
    assert "rstsweep fields" in cli("train", "--help").stdout


# ----------------------------------------------------------------------------- train --set


def test_train_set_reaches_the_config(cli, tmp_path) -> None:
    result = cli("train", *TINY, "--algorithm", "looksam", "--set", "looksam_k=3",
                 "--set", "looksam_alpha=0.5", "--json", "--out", tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    wanted = CellConfig(**TINY_CONFIG, algorithm="looksam", looksam_k=3, looksam_alpha=0.5)
    assert summary["cell_id"] == wanted.cell_id()
    default_k = CellConfig(**TINY_CONFIG, algorithm="looksam", looksam_alpha=0.5)
    assert summary["cell_id"] != default_k.cell_id()  # looksam_k is part of the identity
    assert summary["status"] == "ok" and summary["steps"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "nosuch=1"], "--set nosuch: unknown key"),
        (["--set", "looksam_k=0"], "--set looksam_k: 0: Input should be greater than or equal"),
        (["--set", "mask_kind=best"], "--set mask_kind: 'best': Input should be 'random' or"),
        (["--set", "epochs=2"], "--set epochs: also given as --epochs"),
        (["--epochs", "0"], "--epochs: 0: Input should be greater than or equal to 1"),
        (["--algorithm", "nosuch"], "--algorithm: unknown 'nosuch' (known: sgd, sam,"),
        (["--resume"], "--resume: needs --out DIR"),
    ],
)
def test_train_bad_input_is_one_line_exit_2(cli, args: list[str], message: str) -> None:
    assert one_error_line(cli("train", *TINY, *args)).startswith(message)


# ----------------------------------------------------------------------------- run/plan --set


def test_set_overrides_the_profile_and_changes_cell_ids(sweeps_file) -> None:
    plain = expand(sweeps_file, "constant", "ci")
    longer = expand(sweeps_file, "constant", "ci", {"epochs": 3, "looksam_k": 2})
    assert [c.label for c in longer] == [c.label for c in plain]
    assert {c.config.epochs for c in plain} == {1}  # the ci profile's overrides
    assert {c.config.epochs for c in longer} == {3}  # --set applies over them
    for a, b in zip(plain, longer, strict=True):
        assert b.cell_id == b.config.cell_id() != a.cell_id
        assert b.config.model_copy(update={"epochs": 1, "looksam_k": 5}) == a.config


def test_run_set_is_validated_before_ray_starts(cli, sweeps_file, tmp_path) -> None:
    store = tmp_path / "store"
    base = ("run", "constant", "-p", "ci", "-f", sweeps_file, "-s", store)
    assert one_error_line(cli(*base, "--set", "epochs=0")) == (
        "--set epochs: 0: Input should be greater than or equal to 1"
    )
    assert one_error_line(cli(*base, "--set", "seed=3")).startswith("--set seed: set by the cell")
    assert one_error_line(cli(*base, "--set", "epoch=3")).startswith(
        "--set epoch: unknown key (did you mean 'epochs'?"
    )
    assert not store.exists()  # nothing started, nothing written


def test_plan_set_changes_the_passes(cli, sweeps_file, tmp_path) -> None:
    def total_passes(*extra: str) -> str:
        result = cli("plan", "baselines", "-p", "ci", "-f", sweeps_file, "-s", tmp_path, *extra)
        assert result.exit_code == 0, result.stderr
        return next(line for line in result.stdout.splitlines() if "passes:" in line)

    # baselines under ci: SGD (1 pass/step) + SAM (2 passes/step), T = 256 // 64 = 4 per epoch
    assert total_passes().startswith("expected forward-backward passes: 12 ")
    assert total_passes("--set", "epochs=3").startswith("expected forward-backward passes: 36 ")


# ----------------------------------------------------------------------------- version


def test_version(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout == f"rstsweep {rstsweep.__version__}\n"


def test_python_dash_m_rstsweep(tmp_path) -> None:
    proc = subprocess.run([sys.executable, "-m", "rstsweep", "--version"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"rstsweep {rstsweep.__version__}\n"
    bad = subprocess.run([sys.executable, "-m", "rstsweep", "train", "--set", "nosuch=1"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == (
        "rstsweep: error: --set nosuch: unknown key (not a field; `rstsweep fields` lists them)"
    )

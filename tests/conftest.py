"""Fixtures shared by the tests: the repository's sweeps.yaml, synthetic cells and TrainResults
(no torch), a small synthetic result store, and the CLI run in-process, either through typer's
CliRunner (`cli`) or through the console script's entry point cli.main() (`cli_main`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import factories

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def sweeps_file() -> Path:
    """The repository's sweeps.yaml (every grid of the paper)."""
    return ROOT / "sweeps.yaml"


@pytest.fixture
def make_cell() -> Callable[..., factories.Cell]:
    """`make_cell(schedule="constant(0.5)", seed=0, group="constant")`: a small cell."""
    return factories.make_cell


@pytest.fixture
def make_result() -> Callable[..., factories.TrainResult]:
    """`make_result(cell, steps=16, seed=0, test_error=0.2)`: its TrainResult, real coin draws."""
    return factories.make_result


@pytest.fixture(scope="session")
def small_synthetic_store(tmp_path_factory, sweeps_file: Path) -> Path:
    """A synthetic store of sweeps `constant` and `p-gamma` (ResNet-18 on CIFAR-10/100, 2 seeds),
    half of p-gamma's cells unfinished. Session-wide: tests must only read it."""
    from rstsweep.testing.synthetic import small_store

    root = tmp_path_factory.mktemp("small-store")
    small_store(
        root, sweeps_file, sweeps=["constant", "p-gamma"], seeds=2, unfinished={"p-gamma": 0.5}
    )
    return root


@pytest.fixture
def cli() -> Callable[..., object]:
    """`cli("train", "--set", "x=1")`: the rstsweep app in-process; the result has exit_code,
    stdout and stderr (separately)."""
    return factories.invoke_cli


@pytest.fixture
def cli_main(monkeypatch, capsys) -> Callable[..., tuple[int, str, str]]:
    """`cli_main("verify", "-s", store)`: `rstsweep ARGS` through cli.main(), the console script's
    entry point, in this process; returns (exit code, stdout, stderr) as the user would see them."""
    from rstsweep import cli

    def run(*args: object) -> tuple[int, str, str]:
        capsys.readouterr()  # only this command's output
        monkeypatch.setattr(sys, "argv", ["rstsweep", *map(str, args)])
        code = 0
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code or 0
        out, err = capsys.readouterr()
        return code, out, err

    return run

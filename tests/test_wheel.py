"""The wheel on its own, as `pip install rstsweep` gives it: built with `pip wheel`, installed into
fresh virtual environments (no access to this checkout: no PYTHONPATH, commands run from empty
directories). The core install plans, inspects and analyses a store without torch or Ray and
names the extra a training command needs; `rstsweep[run]` with a plugin distribution installed
beside it trains a `ci`-sized cell through Ray whose schedule family only the plugin registers.

pip's cache makes reruns fast. `RSTSWEEP_TEST_TORCH` (e.g. "torch==2.13.0+cpu
torchvision==0.28.0") constrains the `[run]` environment to a CPU-only torch where the package
index offers one, instead of the default CUDA build's gigabytes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "ray", "optuna")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: nothing pointing at this checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "RAY_USAGE_STATS_ENABLED": "0", **extra}


def sh(*args: str | Path, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_env(),
        timeout=timeout,
    )


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"{proc.args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # from a copy: setuptools writes build/ next to pyproject.toml, never into the checkout
    source = out / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    ok(sh(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, source, cwd=out))
    (built,) = out.glob("rstsweep-*.whl")
    return built


def make_venv(where: Path, *requirements: str | Path, constraints: str = "") -> Path:
    """A fresh venv (no system site-packages) with `requirements` installed by the running
    interpreter's pip (`pip --python`: no pip bootstrap inside the venv); returns its bin/."""
    ok(sh(sys.executable, "-m", "venv", "--without-pip", where, cwd=where.parent))
    args = [sys.executable, "-m", "pip", "--python", where / "bin" / "python", "install", "-q"]
    if constraints:
        spec = where.parent / "constraints.txt"
        spec.write_text("\n".join(constraints.split()) + "\n")
        args += ["-c", spec]
    ok(sh(*args, *requirements, cwd=where.parent))
    return where / "bin"


def importable(bin_dir: Path, modules: tuple[str, ...], cwd: Path) -> list[str]:
    found = f"[m for m in {modules!r} if u.find_spec(m)]"
    code = f"import importlib.util as u, json; print(json.dumps({found}))"
    return json.loads(ok(sh(bin_dir / "python", "-c", code, cwd=cwd)))


def test_core_install_plans_and_reads_a_store_without_torch_or_ray(wheel, tmp_path):
    bin_dir = make_venv(tmp_path / "venv", wheel)
    work = tmp_path / "empty"
    work.mkdir()
    assert importable(bin_dir, HEAVY, work) == []
    where = ok(sh(bin_dir / "python", "-c", "import rstsweep; print(rstsweep.__file__)", cwd=work))
    assert where.startswith(str(tmp_path / "venv"))  # the wheel's copy, not this checkout

    out = ok(
        sh(bin_dir / "rstsweep", "plan", "constant", "--profile", "demo", "--no-probe", cwd=work)
    )
    packaged = tmp_path / "venv" / "lib"
    assert (
        out.startswith(f"sweeps file: {packaged}")
        and "site-packages/rstsweep/data/sweeps.yaml" in out
    )
    assert "constant · profile demo · fastcnn × fashion-mnist × 3 seeds" in out

    # plan's step-cost probe needs torch: a note, and the plan still prints
    proc = sh(bin_dir / "rstsweep", "plan", "constant", "--profile", "demo", cwd=work)
    assert proc.returncode == 0 and "pip install 'rstsweep[run]'" in proc.stderr

    # a small store written by the package's own synthetic writer, read by every core command
    make = (
        "from rstsweep.core.shipped import packaged_sweeps_file as p; "
        "from rstsweep.testing.synthetic import small_store; "
        "small_store('results', p(), sweeps=['constant'], datasets=['cifar10'], seeds=2)"
    )
    ok(sh(bin_dir / "python", "-c", make, cwd=work))
    status = ok(sh(bin_dir / "rstsweep", "status", cwd=work))
    assert "constant" in status and "22" in status  # 11 cases x 2 seeds, all done
    ok(sh(bin_dir / "rstsweep", "verify", cwd=work))
    assert "Table 1" in ok(sh(bin_dir / "rstsweep", "tables", cwd=work))
    figures = ok(sh(bin_dir / "rstsweep", "figures", "--out", "figs", cwd=work))
    assert "figure1.png" in figures and (work / "figs" / "figure1.png").stat().st_size > 10_000
    api = "import rstsweep; print(len(rstsweep.open_store('results').trials()))"
    assert ok(sh(bin_dir / "python", "-c", api, cwd=work)).strip() == "22"

    ok(sh(bin_dir / "rstsweep", "init", cwd=work))
    assert (work / "sweeps.yaml").is_file()
    assert ok(sh(bin_dir / "rstsweep", "plan", "constant", "--no-probe", cwd=work)).startswith(
        "sweeps file: sweeps.yaml\n"
    )

    # training needs the run extra: one line naming it, exit 2, nothing started
    proc = sh(bin_dir / "rstsweep", "run", "constant", "--profile", "ci", "--store", "r2", cwd=work)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == (
        "rstsweep: error: rstsweep run needs torch, torchvision, ray, optuna (not installed): "
        "pip install 'rstsweep[run]'"
    )
    assert not (work / "r2").exists()
    assert importable(bin_dir, HEAVY, work) == []


PLUGIN_PYPROJECT = """
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "rst-ramp-plugin"
version = "0.1"
dependencies = ["rstsweep"]

[project.entry-points."rstsweep.plugins"]
ramp = "rst_ramp_plugin"

[tool.setuptools]
py-modules = ["rst_ramp_plugin"]
"""
PLUGIN = """
import numpy as np
from rstsweep import register_family

register_family("ramp", lambda tau, h: h * np.asarray(tau), [("h", 0.0, 1.0)], lambda h: h / 2,
                "h·τ", closed_form_formula="h/2", example={"h": 0.5})
"""
SWEEPS = """
profiles:
  ci:
    seeds: [0]
    models: [fastcnn]
    datasets: [fashion-mnist]
    config: {batch_size: 16, lr: 0.05, threads: 1}
    overrides: {epochs: 1, train_subset: 256, test_subset: 128, width: 4}
sweeps:
  ramps:
    groups:
      ramp: {schedule: "ramp(0.8)", label: "h=0.8", x: 0.8}
"""


def test_run_extra_trains_a_plugin_cell_through_ray(wheel, tmp_path):
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    (plugin / "rst_ramp_plugin.py").write_text(PLUGIN)
    bin_dir = make_venv(
        tmp_path / "venv",
        f"rstsweep[run] @ {wheel.as_uri()}",
        plugin,
        constraints=os.environ.get("RSTSWEEP_TEST_TORCH", ""),
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "sweeps.yaml").write_text(SWEEPS)
    assert importable(bin_dir, ("tensorboard", "mlflow", "wandb", "duckdb"), work) == []

    proc = sh(
        bin_dir / "rstsweep", "run", "ramps", "--profile", "ci", "--num-cpus", "1",
        "--no-progress", "--no-probe", cwd=work, timeout=600,
    )  # fmt: skip
    ok(proc)
    # the Ray worker parsed ramp(0.8) (only the plugin defines it) and trained the cell
    # and its coins are the plugin's p(t) = 0.8 t/T on the cell's seeded stream
    code = (
        "import rstsweep, rst_ramp_plugin; from rstsweep.schedules import parse; "
        "s = rstsweep.open_store('results'); t = s.trials(); c = t['cell_id'].iloc[0]; "
        "x = s.draws(c)['x'].to_numpy(); want = parse('ramp(0.8)').draws(len(x), 0); "
        "print(len(t), int(t['steps'].iloc[0]), int(x.sum()), bool((x == want).all()))"
    )
    rows, steps, sa_steps, same = ok(sh(bin_dir / "python", "-c", code, cwd=work)).split()
    assert (rows, steps, same) == ("1", str(256 // 16), "True")
    assert 0 < int(sa_steps) < int(steps)

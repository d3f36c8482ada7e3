"""CLI tests for `rstsweep schedules` and fast start-up, through the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

# The console script installed beside this interpreter (.venv/bin/rstsweep); RSTSWEEP_BIN overrides.
RSTSWEEP = os.environ.get("RSTSWEEP_BIN") or str(Path(sys.executable).with_name("rstsweep"))
FAMILIES = ["constant", "piecewise", "linear", "cos1", "cos2", "sin1", "sin2"]
HEAVY = ("torch", "torchvision", "ray")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run([RSTSWEEP, *args], capture_output=True, text=True, timeout=60, env=env)


def test_schedules_prints_the_table() -> None:
    result = run("schedules", "-T", "10")
    assert result.returncode == 0, result.stderr
    for family in FAMILIES:
        assert f" {family} " in result.stdout
    for example in ("constant(0.5)", "piecewise(a=0, b=0.5)", "linear(a=1, b=0)"):
        assert example in result.stdout
    # Discrete Δη at T = 10 by hand: linear(a=1, b=0) → 0.45, cos1 → ½ + 1/(2T) = 0.55.
    line = {f: next(ln for ln in result.stdout.splitlines() if f" {f} " in ln) for f in FAMILIES}
    assert line["linear"].rstrip(" │").endswith("0.4500")
    assert line["cos1"].rstrip(" │").endswith("0.5500")
    assert "0.6366" in line["sin1"]  # closed form 2/π


def test_schedules_appends_extra_specs() -> None:
    result = run("schedules", "--spec", "linear(a=0.8, b=0.1)", "--spec", "piecewise(0.2, 0.3)")
    assert result.returncode == 0, result.stderr
    assert "linear(a=0.8, b=0.1)" in result.stdout
    assert "piecewise(a=0.2, b=0.3)" in result.stdout  # shown in canonical form


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("constant(1.5)", "a = 1.5 is not in [0, 1]"),
        ("piecewise(a=2)", "a = 2 is not in [0, 1]"),
        ("piecewise(a=0.5)", "missing parameter b"),
        ("linear(a=1, b=0.5)", "a + b = 1.5 is not in [0, 1]"),
        ("nosuch", "unknown schedule family 'nosuch'"),
        ("constant(", "malformed"),
    ],
)
def test_bad_spec_is_one_clean_line(spec: str, fragment: str) -> None:
    result = run("schedules", "--spec", spec)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rstsweep: error:")
    assert fragment in lines[0]
    assert result.stdout == ""


def test_help_is_fast() -> None:
    start = time.perf_counter()
    result = run("--help")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0 and "schedules" in result.stdout
    assert elapsed < 3.0  # ~0.3 s here; loose because the machine is shared


def test_cli_and_schedules_do_not_import_heavy_modules() -> None:
    code = (
        "import sys\n"
        "import rstsweep.cli\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
        "from rstsweep.schedules.listing import print_schedule_table\n"
        "print_schedule_table(steps=5, extra_specs=[])\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0] == "[]" and lines[-1] == "[]"

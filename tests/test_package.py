"""The package as a user meets it from the shell: the paper's sweeps.yaml shipped inside it (one
source: the repository's ./sweeps.yaml is the packaged file), `--file` defaulting to ./sweeps.yaml
else the packaged one, `rstsweep init`, shell completion, and plugins from the entry-point group
`rstsweep.plugins` (a plugin distribution on sys.path registering a schedule family). Real
subprocesses through `cli.main`, like the console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from processes import cli_process
from rstsweep.core.shipped import packaged_sweeps_file

ROOT = Path(__file__).resolve().parents[1]
PACKAGED = ROOT / "src" / "rstsweep" / "data" / "sweeps.yaml"

PLUGIN = """
import numpy as np
from rstsweep import register_family

# p(tau) = h * tau: a ramp, Delta-eta = h / 2
register_family("ramp", lambda tau, h: h * np.asarray(tau), [("h", 0.0, 1.0)], lambda h: h / 2,
                "h·τ", closed_form_formula="h/2", example={"h": 0.5})
"""
PLUGIN_SWEEPS = """
profiles:
  t:
    seeds: [0, 1]
    models: [fastcnn]
    datasets: [fashion-mnist]
    overrides: {epochs: 1, train_subset: 256, batch_size: 8, test_subset: 128, width: 4}
sweeps:
  ramps:
    groups:
      ramp:
        grid: {h: [0.4, 0.8]}
        schedule: "ramp({h})"
        x: "{h}"
"""


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rstsweep: error: "), proc.stderr
    return lines[0]


def test_the_repository_sweeps_file_is_the_packaged_one():
    assert packaged_sweeps_file().resolve() == PACKAGED.resolve()
    root = ROOT / "sweeps.yaml"
    # a link to the packaged file (or, on a checkout without links, a byte-identical copy)
    assert root.resolve() == PACKAGED.resolve() or root.read_bytes() == PACKAGED.read_bytes()


def test_plan_uses_the_packaged_file_then_a_local_copy_from_init(tmp_path):
    proc = cli_process("plan", "constant", "--profile", "demo", "--no-probe", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[0]
    assert first == f"sweeps file: {PACKAGED} (the paper's grids shipped with rstsweep)"
    assert "constant · profile demo · fastcnn × fashion-mnist × 3 seeds" in proc.stdout

    proc = cli_process("init", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    copy = tmp_path / "sweeps.yaml"
    assert copy.read_bytes() == PACKAGED.read_bytes() and not copy.is_symlink()
    assert one_error_line(cli_process("init", cwd=tmp_path)).endswith(
        "sweeps.yaml: already exists (pass --force to overwrite it)"
    )

    # the user's edit (a 4th seed for demo) is what plan reads now
    copy.write_text(copy.read_text().replace("seeds: [0, 1, 2]", "seeds: [0, 1, 2, 3]", 1))
    proc = cli_process("plan", "constant", "--profile", "demo", "--no-probe", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "sweeps file: sweeps.yaml"
    assert "fastcnn × fashion-mnist × 4 seeds" in proc.stdout


def test_init_into_a_new_directory_and_force(tmp_path):
    proc = cli_process("init", "exp/one", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    target = tmp_path / "exp" / "one" / "sweeps.yaml"
    target.write_text("edited")
    assert cli_process("init", "exp/one", "--force", cwd=tmp_path).returncode == 0
    assert target.read_bytes() == PACKAGED.read_bytes()


def test_a_missing_file_is_one_line(tmp_path):
    for command in (["plan", "constant"], ["status"]):
        line = one_error_line(cli_process(*command, "--file", "nope.yaml", cwd=tmp_path))
        assert line == "rstsweep: error: nope.yaml: sweeps file not found (pass --file PATH)"


def test_shell_completion_completes_commands_and_options(tmp_path):
    env = {**os.environ, "_RSTSWEEP_COMPLETE": "complete_bash", "COMP_CWORD": "1"}
    words = {"COMP_WORDS": "rstsweep in"}
    proc = subprocess.run(
        [sys.executable, "-c", "from rstsweep.cli import app; app(prog_name='rstsweep')"],
        capture_output=True, text=True, cwd=tmp_path, env={**env, **words},
    )  # fmt: skip
    assert proc.stdout.split() == ["init"], proc.stderr
    words = {"COMP_WORDS": "rstsweep plan --pro", "COMP_CWORD": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", "from rstsweep.cli import app; app(prog_name='rstsweep')"],
        capture_output=True, text=True, cwd=tmp_path, env={**env, **words},
    )  # fmt: skip
    assert proc.stdout.split() == ["--profile"], proc.stderr
    help_text = cli_process("--help", cwd=tmp_path).stdout
    assert "--install-completion" in help_text


def write_plugin(site: Path, body: str = PLUGIN) -> None:
    """An installed plugin distribution as pip lays it out: module + .dist-info with its entry
    point in group rstsweep.plugins."""
    info = site / "rst_ramp_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "rst_ramp_plugin.py").write_text(body)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rst-ramp-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[rstsweep.plugins]\nramp = rst_ramp_plugin\n")


def plugin_env(site: Path) -> dict:
    path = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def test_a_plugin_family_is_known_to_schedules_and_plan(tmp_path):
    site = tmp_path / "site"
    write_plugin(site)
    (tmp_path / "sweeps.yaml").write_text(PLUGIN_SWEEPS)
    env = plugin_env(site)

    proc = cli_process("schedules", "--spec", "ramp(0.4)", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    ramp = [line for line in proc.stdout.splitlines() if "ramp" in line]
    assert ramp and any("0.2" in line for line in ramp), proc.stdout  # Δη = h/2 = 0.2

    proc = cli_process("plan", "ramps", "--profile", "t", "--no-probe", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "sweeps file: sweeps.yaml"
    total = next(line for line in proc.stdout.splitlines() if line.lstrip().startswith("total"))
    cells, done, pending, mean_extra = [c.strip() for c in total.split("│")[1:5]]
    assert (cells, done, pending) == ("4", "0", "4")  # 2 values of h x 2 seeds
    # E[Δη]: the discrete mean of p(t/T) = h·t/T over the T = 256/8 steps, averaged over h
    steps = 256 // 8
    want = np.mean([h * t / steps for h in (0.4, 0.8) for t in range(steps)])
    assert mean_extra == f"{want:.3f}" == "0.291"

    # the same sweeps file without the plugin: the family is unknown
    proc = cli_process("plan", "ramps", "--profile", "t", "--no-probe", cwd=tmp_path)
    assert "ramp" in one_error_line(proc)


@pytest.mark.parametrize("body", ["raise RuntimeError('boom')", "import no_such_module_xyz"])
def test_a_broken_plugin_is_one_line_naming_it(tmp_path, body):
    site = tmp_path / "site"
    write_plugin(site, body)
    line = one_error_line(cli_process("fields", cwd=tmp_path, env=plugin_env(site)))
    assert line.startswith("rstsweep: error: plugin 'ramp' (rst_ramp_plugin, entry point ")

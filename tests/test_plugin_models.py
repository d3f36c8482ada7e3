"""A user's own model and data set (`register_model` / `register_dataset`) from a plugin of the
entry-point group `rstsweep.plugins`: known to sweeps.yaml, `rstsweep train`, `plan`'s step count,
`fields --models` and (slow) the Ray workers of `rstsweep run`; duplicates, unknown names and loader
contract violations are one-line errors. The plugin is a distribution laid out on sys.path as pip
installs it (module + .dist-info with the entry point), the CLI runs as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rstsweep import RstError, register_dataset, register_model
from rstsweep.core import catalog, registry

# A 2-layer MLP and 256/64 synthetic 1×8×8 images of 3 classes (the class is the brightness, which
# survives flips and crops, so the MLP learns it in a few steps); torch is imported by the builder
# only, so `plan` and `fields` stay torch-free with the plugin installed.
PLUGIN = """
import numpy as np
from rstsweep import register_dataset, register_model


def build(in_channels, num_classes, width, image_size):
    from torch import nn

    hidden = width or 32
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * image_size**2, hidden), nn.ReLU(),
                         nn.Linear(hidden, num_classes))


def split(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = 30 + 90 * y[:, None, None, None] + rng.integers(0, 30, (n, 1, 8, 8))
    return x.astype(np.uint8), y


def load(data_dir):
    return (*split(256, 0), *split(64, 1))


register_model("mymlp", build, description="2-layer MLP (the test plugin)")
register_dataset("mydata", load, shape=(1, 8, 8), num_classes=3, train_size=256, test_size=64)
"""
SWEEPS = """
profiles:
  t:
    seeds: [0, 1]
    models: [mymlp]
    datasets: [mydata]
    config: {batch_size: 32, lr: 0.05, threads: 1}
    overrides: {epochs: 2}
sweeps:
  mine:
    groups:
      half: {schedule: "constant(0.5)", label: "p=0.5", x: 0.5}
"""


def write_plugin(site: Path, body: str = PLUGIN) -> None:
    """The plugin distribution as pip lays it out: module + .dist-info with its entry point."""
    info = site / "rst_mine_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (site / "rst_mine_plugin.py").write_text(body)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: rst-mine-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[rstsweep.plugins]\nmine = rst_mine_plugin\n")


def cli(
    *args: str, cwd: Path, site: Path | None, timeout: int = 300
) -> subprocess.CompletedProcess:
    path = [str(site)] if site else []
    path += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path), "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.run(
        [sys.executable, "-m", "rstsweep.cli", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout,
    )  # fmt: skip


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rstsweep: error: "), proc.stderr
    return lines[0]


@pytest.fixture
def plugin(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    write_plugin(site)
    (tmp_path / "sweeps.yaml").write_text(SWEEPS)
    return site


# --------------------------------------------------------------------------- in this process
@pytest.fixture
def registered():
    """mymlp / mydata registered in this process (the plugin's code run directly), then removed."""
    namespace: dict = {}
    exec(PLUGIN, namespace)
    yield namespace
    registry.unregister("mymlp")
    registry.unregister("mydata")


def test_registered_names_join_the_catalog(registered):
    assert catalog.model_names()[-1] == "mymlp" and catalog.dataset_names()[-1] == "mydata"
    assert catalog.is_known_model("mymlp") and not catalog.is_builtin_model("mymlp")
    assert catalog.TRAIN_SIZES["mydata"] == 256 and catalog.DATASET_SHAPES["mydata"] == (1, 8, 3)
    assert catalog.model_variant("mymlp", "cifar10") == "2-layer MLP (the test plugin)"
    with pytest.raises(ValueError, match="mymlp on imagenet: registered for small-image"):
        catalog.model_variant("mymlp", "imagenet")
    # built-in tuples are untouched (other modules hold them by identity)
    assert "mymlp" not in catalog.MODEL_NAMES and "mydata" not in catalog.DATASETS


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: register_model("mymlp", len), "register_model: model 'mymlp' is already"),
        (lambda: register_model("resnet18", len), "register_model: model 'resnet18' is already"),
        (lambda: register_model("wrn-40-2", len), "register_model: model 'wrn-40-2' is already"),
        (
            lambda: register_dataset("mydata", len, shape=(1, 8, 8), num_classes=3, train_size=9),
            "register_dataset: dataset 'mydata' is already",
        ),
        (
            lambda: register_dataset(
                "cifar10", len, shape=(3, 32, 32), num_classes=10, train_size=9
            ),
            "register_dataset: dataset 'cifar10' is already",
        ),
        (
            lambda: register_dataset("other", len, shape=(1, 8, 9), num_classes=3, train_size=9),
            "shape (1, 8, 9) must be (C, H, W) with H == W",
        ),
        (lambda: register_model("My Net", len), "name 'My Net' must match"),
    ],
)
def test_duplicate_or_bad_registrations_are_one_line(registered, call, message):
    with pytest.raises(RstError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        call()
    assert "\n" not in str(err.value)


def test_a_loader_breaking_its_contract_is_one_line_naming_the_data_set():
    from rstsweep.trainers.data import load_data

    def load(data_dir):
        x = np.zeros((10, 1, 8, 8), np.uint8)
        return x, np.zeros(10, int), x, np.zeros(10, int)

    register_dataset("bad", load, shape=(1, 8, 8), num_classes=3, train_size=12)
    try:
        with pytest.raises(RstError, match="bad: its loader returned 10 train images; it was "):
            load_data("bad")
        registry.unregister("bad")
        register_dataset("bad", load, shape=(3, 8, 8), num_classes=3, train_size=10)
        with pytest.raises(RstError, match=r"bad: its loader's train_x is uint8 \(10, 1, 8, 8\)"):
            load_data("bad")
    finally:
        registry.unregister("bad")


def test_the_trainer_builds_and_loads_them(registered):
    from rstsweep.trainers.data import load_data
    from rstsweep.trainers.models import build_model

    data = load_data("mydata", train_subset=100, label_noise=0.2, seed=3)
    assert (data.n_train, data.n_test, data.in_channels, data.image_size) == (100, 64, 1, 8)
    assert data.num_classes == 3 and str(data.train_images.dtype) == "torch.uint8"
    model = build_model("mymlp", 1, 3, width=7, image_size=8, dataset="mydata")
    assert model(data.train_images[:5].float()).shape == (5, 3)
    assert model[1].out_features == 7  # the cell's width reached the builder
    with pytest.raises(RstError, match="mymlp on imagenet"):
        build_model("mymlp", 3, 1000, image_size=224, dataset="imagenet")


# --------------------------------------------------------------------------- the CLI, as a user
def test_train_a_plugin_model_on_a_plugin_data_set(plugin, tmp_path):
    proc = cli(
        "train", "--model", "mymlp", "--dataset", "mydata", "--epochs", "1", "--json",
        "--set", "batch_size=32", "--set", "threads=1", "--device", "cpu",
        cwd=tmp_path, site=plugin,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 256 // 32
    assert 0.0 <= summary["test_error"] < 2 / 3  # learnt something (chance: 2/3)


def test_plan_counts_the_registered_train_size_and_fields_lists_the_model(plugin, tmp_path):
    proc = cli("plan", "mine", "--profile", "t", "--no-probe", cwd=tmp_path, site=plugin)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "mymlp × mydata: 2-layer MLP (the test plugin)" in out
    # T = 256 / 32 × 2 epochs = 16 per cell, 2 seeds: SGD alone 32 passes
    assert "SGD alone: 32)" in out, out

    proc = cli("fields", "--models", cwd=tmp_path, site=plugin)
    assert proc.returncode == 0, proc.stderr
    assert any(
        line.split()[:2] == ["mymlp", "small-image"] and "2-layer MLP" in line
        for line in proc.stdout.splitlines()
    ), proc.stdout


def test_unknown_names_list_the_registered_ones_and_need_the_plugin(plugin, tmp_path):
    (tmp_path / "sweeps.yaml").write_text(SWEEPS.replace("models: [mymlp]", "models: [mymlpp]"))
    line = one_error_line(cli("plan", "mine", "--profile", "t", "--no-probe", cwd=tmp_path,
                              site=plugin))  # fmt: skip
    assert "unknown model 'mymlpp'" in line and line.endswith(", ..., mymlp)")

    (tmp_path / "sweeps.yaml").write_text(SWEEPS.replace("datasets: [mydata]", "datasets: [x]"))
    line = one_error_line(cli("plan", "mine", "--profile", "t", "--no-probe", cwd=tmp_path,
                              site=plugin))  # fmt: skip
    assert "unknown dataset 'x'" in line and "cifar10" in line and line.endswith("mydata)")

    proc = cli("train", "--model", "mymlp", "--dataset", "nope", cwd=tmp_path, site=plugin)
    line = one_error_line(proc)
    assert "unknown dataset 'nope'" in line and line.endswith("imagenet, mydata")

    # the same sweeps file without the plugin installed: the names are unknown
    (tmp_path / "sweeps.yaml").write_text(SWEEPS)
    line = one_error_line(cli("plan", "mine", "--profile", "t", "--no-probe", cwd=tmp_path,
                              site=None))  # fmt: skip
    assert "unknown model 'mymlp'" in line


@pytest.mark.slow
def test_ray_workers_train_the_plugin_cells(plugin, tmp_path):
    """`rstsweep run` through Ray: each trial imports the entry-point plugin on its worker, so the
    worker builds mymlp and loads mydata; steps are the registered train_size / batch_size."""
    proc = cli(
        "run", "mine", "--profile", "t", "--num-cpus", "1", "--no-progress", "--no-probe",
        cwd=tmp_path, site=plugin, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    import rstsweep

    trials = rstsweep.open_store(tmp_path / "results").trials()
    assert len(trials) == 2 and set(trials["model"]) == {"mymlp"}
    assert set(trials["dataset"]) == {"mydata"}
    assert set(trials["steps"]) == {256 // 32 * 2}

"""Streamed ImageFolder (`trainers/imagefolder.py`) on a JPEG folder generated here: the ResNet
recipe's shapes and geometry, order and crops deterministic per (seed, epoch) whatever the number
of DataLoader workers, shards that concatenate to the one-process batch, and the `imagenet` sweep
end to end through `rstsweep run`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from processes import cli_process
from rstsweep.trainers.augment import test_batches, train_batches
from rstsweep.trainers.data import ensure_dataset, load_data
from rstsweep.trainers.imagefolder import FolderData, crop_box

COLOURS = [(220, 30, 30), (30, 200, 40), (40, 40, 230)]


def make_folder(root: Path, per_class: tuple[int, int] = (80, 20)) -> Path:
    """train/ and val/ with one class per colour: noisy JPEGs of assorted sizes."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in zip(("train", "val"), per_class, strict=True):
        for c, colour in enumerate(COLOURS):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for k in range(count):
                h, w = int(rng.integers(36, 60)), int(rng.integers(36, 60))
                pixels = np.clip(rng.normal(colour, 25, size=(h, w, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{k:03d}.jpg", quality=90)
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_folder(tmp_path_factory.mktemp("imagenet"))


def _load(folder: Path, **kwargs) -> FolderData:
    options = {"image_size": 32, "loader_workers": 0, "seed": 3, **kwargs}
    data = load_data("imagenet", data_dir=folder, **options)
    assert isinstance(data, FolderData)
    return data


def test_scan_shapes_and_labels(folder: Path) -> None:
    data = _load(folder)
    assert (data.n_train, data.n_test, data.num_classes, data.image_size) == (240, 60, 3, 32)
    assert data.train_labels.tolist() == [0] * 80 + [1] * 80 + [2] * 80
    x, y = next(iter(train_batches(data, 32, "basic", seed=3, epoch=0)))
    assert x.shape == (32, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (32,)
    # evaluation: every image of val/ once, in order, centre crops: class colour survives
    seen = [(x, y) for x, y in test_batches(data, 25)]
    assert [len(y) for _, y in seen] == [25, 25, 10]
    labels = torch.cat([y for _, y in seen])
    assert labels.tolist() == [0] * 20 + [1] * 20 + [2] * 20
    means = torch.cat([x for x, _ in seen]).mean(dim=(2, 3))  # normalised channel means
    assert (means.argmax(dim=1) == labels).all()
    assert ensure_dataset("imagenet", folder) == folder


def test_order_and_crops_depend_on_seed_and_epoch_only(folder: Path) -> None:
    def epoch(data: FolderData, e: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(train_batches(data, 64, "basic", seed=3, epoch=e))

    single, two_workers = _load(folder), _load(folder, loader_workers=2)
    first = epoch(single, 0)
    assert len(first) == 3  # drop_last: 240 // 64
    for (xa, ya), (xb, yb) in zip(first, epoch(two_workers, 0), strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    again = epoch(single, 0)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    other = epoch(single, 1)
    assert not torch.equal(first[0][1], other[0][1])  # another order
    # shards of 2 workers concatenate to the one-process batch
    for rank_batches in [list(single.stream_train(64, "basic", 3, 0, (r, 2))) for r in range(2)]:
        assert [len(y) for _, y in rank_batches] == [32, 32, 32]
    parts = [list(single.stream_train(64, "basic", 3, 0, (r, 2))) for r in range(2)]
    for (x0, y0), (x1, y1), (x, y) in zip(*parts, first, strict=True):
        assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)


def test_crop_box_follows_random_resized_crop() -> None:
    rng = np.random.default_rng(0)
    areas, ratios = [], []
    for _ in range(500):
        left, top, w, h = crop_box(rng, 100, 100)
        assert min(left, top) >= 0 and left + w <= 100 and top + h <= 100
        areas.append(w * h / 100**2)
        ratios.append(w / h)
    assert min(areas) >= 0.07 and max(areas) <= 1.0 and np.mean(areas) > 0.3
    assert min(ratios) >= 0.7 and max(ratios) <= 1.4 and min(ratios) < 0.8 < 1.25 < max(ratios)
    # 1000 x 10: no try fits, so the centre crop at the widest allowed ratio (13 x 10)
    assert crop_box(np.random.default_rng(1), 1000, 10) == (493, 0, 13, 10)


@pytest.mark.slow  # a real Ray run
def test_imagenet_sweep_runs_through_rstsweep_run(folder: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "RAY_USAGE_STATS_ENABLED": "0"}
    store = tmp_path / "store"
    command = ["run", "imagenet", "--profile", "ci-imagenet"]
    command += ["--data-dir", str(folder), "--store", str(store), "--num-cpus", "2"]
    done = cli_process(*command, env=env, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    trials = pd.read_parquet(store / "trials")
    assert len(trials) == 3 and set(trials["dataset"]) == {"imagenet"}
    assert set(trials["status"]) == {"ok"} and (trials["steps"] == 240 // 32).all()
    again = cli_process(*command, env=env, timeout=900)
    assert again.returncode == 0 and "0 run now, 3 already done" in again.stdout

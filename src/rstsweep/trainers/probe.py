"""Measure a cell's step costs before any run: a few base and sharpness-aware steps of its model,
optimizer and batch size on its device, on synthetic data of its dataset's shape (no download, no
data set needed). `rstsweep plan` turns these into time estimates when the store has no
measurements yet. Run as `python -m rstsweep.trainers.probe - STEPS` it reads one config JSON per
stdin line and prints one result line each (the sweeper probes in a subprocess it can time out)."""

from __future__ import annotations

import json
import sys
import time

import torch

from rstsweep.core.catalog import IMAGE_SHAPES
from rstsweep.core.config import CellConfig
from rstsweep.trainers.augment import normalize
from rstsweep.trainers.cell import build_cell
from rstsweep.trainers.data import DataBundle, channel_stats
from rstsweep.trainers.runtime import resolve_runtime, to_memory_format
from rstsweep.trainers.step import train_step

WARMUP = 2  # untimed steps of each branch first (cuDNN autotuning, allocator, lazy init)


def synthetic_data(config: CellConfig, device: torch.device) -> DataBundle:
    """Random uint8 images and labels of the dataset's shape: two batches' worth."""
    channels, side, classes = IMAGE_SHAPES[config.dataset]
    gen = torch.Generator().manual_seed(config.seed)
    n = 2 * config.batch_size
    images = torch.randint(0, 256, (n, channels, side, side), generator=gen, dtype=torch.uint8)
    labels = torch.randint(0, classes, (n,), generator=gen)
    images, labels = images.to(device), labels.to(device)
    mean, std = channel_stats(images)
    return DataBundle(config.dataset, images, labels, images, labels, classes, mean, std)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_steps(config: CellConfig, steps: int = 5) -> dict:
    """Mean wall seconds of one base step (`base_step_s`) and one sharpness-aware step
    (`sa_step_s`, None for SGD) over `steps` timed steps each, and the peak device memory
    (`peak_memory_bytes`, CUDA only; None on CPU)."""
    # two batches per epoch and enough epochs that the lr schedule covers every probe step
    update = {"epochs": WARMUP + steps + 1, "train_subset": None, "test_subset": None}
    probe = config.model_copy(update=update)
    device = resolve_runtime(probe).device
    cell = build_cell(probe, data=synthetic_data(probe, device))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    images = cell.data.train_images[: probe.batch_size]
    x = to_memory_format(normalize(images, cell.data.mean, cell.data.std), cell.runtime)
    y = cell.data.train_labels[: probe.batch_size]
    cell.ctx.model.train()
    cell.ctx.reset_epoch_sums()
    out: dict = {"base_step_s": None, "sa_step_s": None}
    branches = [("base_step_s", False)] + (
        [("sa_step_s", True)] if probe.algorithm != "sgd" else []
    )
    for key, sa in branches:
        for _ in range(WARMUP):
            train_step(cell.ctx, x, y, sa)
        _sync(device)
        begin = time.perf_counter()
        for _ in range(steps):
            train_step(cell.ctx, x, y, sa)
        _sync(device)
        out[key] = (time.perf_counter() - begin) / steps
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    out["peak_memory_bytes"] = int(peak) if peak is not None else None
    out["device"] = str(device)
    return out


def main(argv: list[str]) -> None:
    """`CONFIG_JSON [STEPS]`, or `- [STEPS]`: one config JSON per stdin line, one result line each
    (`{"error": ...}` for a setting that cannot be built or run), flushed as it is measured."""
    steps = int(argv[1]) if len(argv) > 1 else 5
    sources = sys.stdin if argv[0] == "-" else [argv[0]]
    for line in sources:
        if not line.strip():
            continue
        try:
            result = measure_steps(CellConfig.model_validate_json(line), steps)
        except Exception as exc:  # reported per setting: the others still get probed
            text = str(exc).strip().splitlines()
            result = {"error": f"{type(exc).__name__}: {text[0] if text else ''}"}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])

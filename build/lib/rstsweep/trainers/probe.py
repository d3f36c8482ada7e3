"""Measure a few base and sharpness-aware steps: step times and peak device memory.

`time_branches(step, device, steps)` is the timing method both the planner's probe and
`benchmarks/bench_gpu.py` use: per branch, `warmup` untimed steps (kernel selection, allocator
growth, compilation), then `steps` steps timed as one block between two device synchronisations
(no sync inside the block, so the GPU's queue stays full, as in training), and the peak memory of
the whole measurement. `measure_steps(config, steps)` builds the cell of a CellConfig on
synthetic data of its dataset's shape (no dataset needed) and times its real `train_step`.

Module level is torch only (CellConfig and the cell builder are imported inside
`measure_steps`), so the GPU benchmark runs where pydantic is not installed.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from rstsweep.core.catalog import DATASET_SHAPES
from rstsweep.trainers.memory import device_memory_bytes, peak_memory_bytes, reset_peak_memory

if TYPE_CHECKING:
    from rstsweep.core.config import CellConfig


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU, where work is synchronous)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_branches(
    step: Callable[[bool], None],
    device: torch.device,
    steps: int,
    warmup: int = 2,
    branches: tuple[bool, ...] = (False, True),
) -> dict[str, Any]:
    """Mean seconds per step of each branch (`step(False)`: base, `step(True)`: SA) and the peak
    memory of the measurement (see `memory.peak_memory_bytes`)."""
    if steps < 1:
        raise ValueError(f"steps: {steps} must be >= 1")
    reset_peak_memory(device)
    means: dict[bool, float] = {}
    for sa in branches:
        for _ in range(warmup):
            step(sa)
        synchronize(device)
        begin = time.perf_counter()
        for _ in range(steps):
            step(sa)
        synchronize(device)
        means[sa] = (time.perf_counter() - begin) / steps
    return {
        "sgd_step_s": means.get(False),
        "sa_step_s": means.get(True),
        "peak_memory_bytes": peak_memory_bytes(device),
        "device_memory_bytes": device_memory_bytes(device),
    }


def synthetic_batch(
    dataset: str, batch_size: int, device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A normalised-looking float batch of `dataset`'s shape on `device`: (x, y, classes)."""
    channels, side, classes = DATASET_SHAPES[dataset]
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, channels, side, side, generator=gen)
    y = torch.randint(0, classes, (batch_size,), generator=gen)
    return x.to(device), y.to(device), classes


def measure_steps(config: CellConfig, steps: int = 5, warmup: int = 2) -> dict[str, Any]:
    """Time `steps` base and `steps` SA steps of `config`'s cell (its model, algorithm, batch
    size, precision, compile setting and device) on a synthetic batch; returns sgd_step_s,
    sa_step_s (None for SGD), peak_memory_bytes, device_memory_bytes and what was measured."""
    from rstsweep.trainers.cell import build_cell
    from rstsweep.trainers.data import DataBundle
    from rstsweep.trainers.runtime import resolve_runtime, to_memory_format
    from rstsweep.trainers.step import train_step

    device = resolve_runtime(config).device
    x, y, classes = synthetic_batch(config.dataset, config.batch_size, device, config.seed)
    images = torch.zeros(x.shape, dtype=torch.uint8, device=device)  # only the shape is used
    channels = x.shape[1]
    bundle = DataBundle(
        name=f"synthetic-{config.dataset}",
        train_images=images,
        train_labels=y,
        test_images=images,
        test_labels=y,
        num_classes=classes,
        mean=torch.full((channels,), 0.5, device=device),
        std=torch.full((channels,), 0.25, device=device),
    )
    cell = build_cell(config, data=bundle)
    cell.ctx.reset_epoch_sums()
    x = to_memory_format(x, cell.runtime)
    branches = (False,) if config.algorithm == "sgd" else (False, True)
    measured = time_branches(
        lambda sa: train_step(cell.ctx, x, y, sa), device, steps, warmup, branches
    )
    return {
        **measured,
        "model": config.model,
        "dataset": config.dataset,
        "algorithm": config.algorithm,
        "batch_size": config.batch_size,
        "device": str(device),
        "precision": cell.runtime.precision,
        "compiled": cell.ctx.passes.compiled,
        "steps": steps,
        "warmup": warmup,
    }


def main(argv: list[str]) -> None:
    """`CONFIG_JSON [STEPS]`, or `- [STEPS]`: one config JSON per stdin line, one result line each
    (`{"error": ...}` for a setting that cannot be built or run), flushed as it is measured."""
    from rstsweep.core.config import CellConfig

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

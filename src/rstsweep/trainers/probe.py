"""Measure a few base and sharpness-aware steps: step times and peak device memory.

`time_branches(step, device, steps)` is the timing method both the planner's probe and
`benchmarks/bench_gpu.py` use: per branch, `warmup` untimed steps (kernel selection, allocator
growth, compilation), then `steps` steps timed as one block between two device synchronisations
(no sync inside the block, so the GPU's queue stays full, as in training), and the peak memory of
the whole measurement. `measure_steps(config, steps)` builds the cell of a CellConfig on
synthetic data of its dataset's shape (no dataset needed) and times its real `train_step`, then
the atoms of a step (`measure_atoms`: the base step as the unit, a forward-backward on the whole
batch and on the fraction the algorithm's second pass takes, the no-grad ranking forward, a first
pass on fresh β-draws of ESAM's frozen tensors, the SAM-family vector work) from which
`rstsweep.core.passes.sa_extra_time` predicts a sharpness-aware step's extra time.

Module level is torch only (CellConfig and the cell builder are imported inside
`measure_steps`), so the GPU benchmark runs where pydantic is not installed.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from rstsweep.core.catalog import DATASET_SHAPES
from rstsweep.core.passes import StepAtoms
from rstsweep.trainers.memory import device_memory_bytes, peak_memory_bytes, reset_peak_memory

if TYPE_CHECKING:
    from rstsweep.core.config import CellConfig
    from rstsweep.trainers.step import StepContext
    from rstsweep.trainers.variants import ESAM


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
) -> dict[str, object]:
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


def time_call(fn: Callable[[], object], device: torch.device, steps: int, warmup: int) -> float:
    """Mean seconds of `fn()` over `steps` calls after `warmup` untimed ones (synced blocks)."""
    for _ in range(warmup):
        fn()
    synchronize(device)
    begin = time.perf_counter()
    for _ in range(steps):
        fn()
    synchronize(device)
    return (time.perf_counter() - begin) / steps


class AtomTimer:
    """Times the atoms of a step of `config`'s cell (`ctx`, its own device and setting) on the
    batch (x, y), one round at a time: `warm_up(n)` runs every atom n times untimed, each
    `time_round()` times every atom once (units in alternating order from round to round, so load
    drift on a shared machine hits all alike), `atoms()` composes the rounds so far. One round at
    a time lets a caller interleave the rounds with other work (a benchmark's real steps).
    Changes the cell's weights and optimizer state: a probe's throwaway cell."""

    def __init__(self, ctx: StepContext, x: torch.Tensor, y: torch.Tensor, config: CellConfig):
        self.config, self.device, self.batch = config, x.device, x.shape[0]
        self.units = _atom_units(ctx, x, y, config)
        self.samples: dict[str, list[float]] = {n: [] for unit in self.units for n, _ in unit}

    def warm_up(self, calls: int) -> None:
        for unit in self.units:
            for _ in range(calls):
                for _, fn in unit:
                    fn()

    def time_round(self) -> None:
        rounds = len(next(iter(self.samples.values())))
        for unit in self.units if rounds % 2 == 0 else self.units[::-1]:
            for name, fn in unit:  # in order: the vector work needs the pass before it
                self.samples[name].append(time_call(fn, self.device, 1, 0))

    def atoms(self) -> StepAtoms:
        med = {name: _central(name, values) for name, values in self.samples.items()}
        atoms: dict[str, object] = {k: med[k] for k in ("base_step", "fb", "rank_forward")}
        atoms["vector"] = med["two_pass"] - med["opt_base"] if "two_pass" in med else 0.0
        if "reuse" in med:
            atoms["reuse_vector"] = med["reuse"] - med["opt_base"]
        if "fb_fraction" in med:
            atoms["fraction"] = _second_fraction(self.config, self.batch)
            atoms["fb_fraction"] = med["fb_fraction"]
        if "frozen_first_pass" in med:
            atoms["beta"], atoms["frozen_first_pass"] = (
                self.config.esam_beta,
                med["frozen_first_pass"],
            )
        return StepAtoms(**atoms)


def measure_atoms(
    ctx: StepContext,
    x: torch.Tensor,
    y: torch.Tensor,
    config: CellConfig,
    steps: int,
    warmup: int = 2,
) -> StepAtoms:
    """The atoms of a step of `config`'s cell on the batch (x, y) (see `AtomTimer`): `warmup`
    untimed calls each, then `steps` timed rounds; each atom is the median over the rounds (a
    drawn atom their trimmed mean: `DRAWN_ATOMS`)."""
    timer = AtomTimer(ctx, x, y, config)
    timer.warm_up(warmup)
    for _ in range(steps):
        timer.time_round()
    return timer.atoms()


# Atoms whose cost changes with a random draw (ESAM's tensor choice): the model needs their
# expectation, so they get a trimmed mean (robust to load spikes, unlike the median not pulled
# towards the most frequent draw); the others get the median over rounds.
DRAWN_ATOMS = frozenset({"frozen_first_pass"})


def _central(name: str, values: list[float]) -> float:
    if name not in DRAWN_ATOMS:
        return statistics.median(values)
    ordered = sorted(values)
    cut = len(ordered) // 10
    return statistics.fmean(ordered[cut : len(ordered) - cut] or ordered)


def _second_fraction(config: CellConfig, batch: int) -> float:
    """The share of the batch the second pass takes (ESAM's ⌊γ·B⌋, at least 1; else 1)."""
    if config.algorithm != "esam":
        return 1.0
    return max(1, int(config.esam_gamma * batch)) / batch


def _atom_units(ctx: StepContext, x: torch.Tensor, y: torch.Tensor, config: CellConfig) -> list:
    """The timed atoms as units of (name, call) run in order within a round."""
    from rstsweep.trainers.step import train_step
    from rstsweep.trainers.variants import LookSAM

    opt, model = ctx.optimizer, ctx.net or ctx.model

    def fb(xb: torch.Tensor, yb: torch.Tensor) -> None:
        opt.zero_grad(set_to_none=True)
        with ctx.runtime.autocast():
            out = ctx.passes.sa(model, xb)
            loss = F.cross_entropy(out, yb, label_smoothing=ctx.label_smoothing)
        loss.backward()

    def two_pass() -> None:  # the optimizer work of a two-pass SA step, on the pass's gradients
        opt.first_step(zero_grad=False)
        opt.second_step(zero_grad=False)

    def reuse() -> None:
        opt.sa_steps = 1  # a reuse step is due (LookSAM's count); g_v comes from two_pass
        opt.reuse_step(zero_grad=False)

    passes: list = [("fb", lambda: fb(x, y))]
    if config.algorithm != "sgd":
        passes += [("two_pass", two_pass), ("opt_base", lambda: opt.base_step(zero_grad=False))]
        if isinstance(opt, LookSAM) and opt.k > 1:
            passes.append(("reuse", reuse))
    units = [
        [("base_step", lambda: train_step(ctx, x, y, False))],
        passes,
        [("rank_forward", lambda: ctx.sample_losses(x, y))],
    ]
    k = round(_second_fraction(config, x.shape[0]) * x.shape[0])
    if k < x.shape[0]:
        units.append([("fb_fraction", lambda: fb(x[:k], y[:k]))])
    if config.algorithm == "esam":
        units.append([("frozen_first_pass", lambda: _esam_first_pass(opt, fb, x, y))])
    return units


def _esam_first_pass(opt: ESAM, fb: Callable, x: torch.Tensor, y: torch.Tensor) -> None:
    """ESAM's own first pass on a fresh tensor draw: `before_first_pass` freezes the tensors the
    draw left out (their weight gradients are skipped), as in a training step."""
    opt.draw_choice()
    opt.before_first_pass()
    try:
        fb(x, y)
    finally:
        opt.abandon_first_pass()


def synthetic_batch(
    dataset: str, batch_size: int, device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A normalised-looking float batch of `dataset`'s shape on `device`: (x, y, classes)."""
    channels, side, classes = DATASET_SHAPES[dataset]
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, channels, side, side, generator=gen)
    y = torch.randint(0, classes, (batch_size,), generator=gen)
    return x.to(device), y.to(device), classes


def measure_steps(config: CellConfig, steps: int = 5, warmup: int = 2) -> dict[str, object]:
    """Time `steps` base and `steps` SA steps of `config`'s cell (its model, algorithm, batch
    size, precision, compile setting and device) on a synthetic batch; returns sgd_step_s,
    sa_step_s (None for SGD), peak_memory_bytes, device_memory_bytes and what was measured."""
    from rstsweep.trainers.data import DataBundle
    from rstsweep.trainers.run import build_run
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
    run = build_run(config, data=bundle)
    run.ctx.reset_epoch_sums()
    x = to_memory_format(x, run.runtime)
    branches = (False,) if config.algorithm == "sgd" else (False, True)
    measured = time_branches(
        lambda sa: train_step(run.ctx, x, y, sa), device, steps, warmup, branches
    )
    atoms = measure_atoms(run.ctx, x, y, config, steps, warmup)
    return {
        **measured,
        "atoms": asdict(atoms),
        "model": config.model,
        "dataset": config.dataset,
        "algorithm": config.algorithm,
        "batch_size": config.batch_size,
        "device": str(device),
        "precision": run.runtime.precision,
        "compiled": run.ctx.passes.compiled,
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

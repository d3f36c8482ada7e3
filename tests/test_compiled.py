"""Compiled steps (torch.compile of the base and the SA forwards) against eager, on the CPU: the
same weights and BatchNorm running statistics after a mix of base and SAM steps, two graphs (one
per branch: both SA passes share one), and no recompile once each branch has run.

The fast test compiles with the `aot_eager` backend (Dynamo + AOTAutograd, which is where module
attributes and buffer mutations are handled; no C++ build); the slow one with inductor."""

from __future__ import annotations

import pytest
import torch
import torch._dynamo
from torch import nn
from torch._dynamo.utils import counters

from factories import tiny_config
from rstsweep.trainers import run as run_module
from rstsweep.trainers.compiled import EAGER, Passes, compiled_passes
from rstsweep.trainers.loop import train
from rstsweep.trainers.runtime import Runtime
from rstsweep.trainers.sam import SAM, disable_running_stats
from rstsweep.trainers.step import StepContext, train_step

torch.set_num_threads(1)
PATTERN = [False, True, True, False, True, False, True]  # X_t of the steps


def make_ctx(passes: Passes) -> StepContext:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.1, lr=0.2, momentum=0.9)
    ctx = StepContext(
        model=model,
        optimizer=opt,
        scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0),
        runtime=Runtime(device=torch.device("cpu"), precision="fp32", channels_last=False),
        label_smoothing=0.0,
        disable_running_stats=disable_running_stats,
        passes=passes,
    )
    ctx.reset_epoch_sums()
    return ctx


def bn_state(model: nn.Module) -> list[torch.Tensor]:
    bn = model[1]
    return [bn.running_mean, bn.running_var, bn.num_batches_tracked]


def run_compiled_against_eager(backend: str) -> None:
    torch._dynamo.reset()
    counters.clear()
    gen = torch.Generator().manual_seed(1)
    batches = [
        (torch.randn(8, 3, 6, 6, generator=gen), torch.randint(0, 3, (8,), generator=gen))
        for _ in PATTERN
    ]
    eager, compiled = make_ctx(EAGER), make_ctx(compiled_passes(backend=backend))
    for i, ((x, y), sa) in enumerate(zip(batches, PATTERN, strict=True)):
        train_step(eager, x, y, sa)
        if i == 2:  # both branches have run (and compiled) once: from here on, no recompile
            graphs = counters["stats"]["unique_graphs"]
            torch._dynamo.config.error_on_recompile = True
        train_step(compiled, x, y, sa)
    torch._dynamo.config.error_on_recompile = False
    assert graphs == counters["stats"]["unique_graphs"] == 2  # base + SA, nothing more
    assert counters["frames"]["ok"] == 2
    for a, b in zip(bn_state(eager.model), bn_state(compiled.model), strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-6)
    assert int(bn_state(compiled.model)[2]) == len(PATTERN)  # one BN update per step
    for a, b in zip(eager.model.parameters(), compiled.model.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_compiled_sam_steps_equal_eager_and_do_not_recompile():
    try:
        run_compiled_against_eager("aot_eager")
    finally:
        torch._dynamo.config.error_on_recompile = False
        torch._dynamo.reset()


@pytest.mark.slow
def test_inductor_compiled_sam_steps_equal_eager():
    try:
        run_compiled_against_eager("inductor")
    finally:
        torch._dynamo.config.error_on_recompile = False
        torch._dynamo.reset()


@pytest.mark.slow
def test_compile_true_cell_matches_the_eager_cell(monkeypatch):
    """`compile: true` through the real trainer (aot_eager backend: no C++ build on the CPU)."""
    monkeypatch.setattr(run_module, "compiled_passes", lambda: compiled_passes(backend="aot_eager"))
    base = dict(seed=3, schedule="constant(0.5)")
    try:
        eager = train(tiny_config(**base))
        compiled = train(tiny_config(**base, compile=True))
    finally:
        torch._dynamo.reset()
    assert compiled.cell_id == eager.cell_id  # compile is runtime-only
    assert compiled.manifest["compiled"] and not eager.manifest["compiled"]
    assert compiled.train_loss == pytest.approx(eager.train_loss, rel=1e-5)
    assert compiled.test_loss == pytest.approx(eager.test_loss, rel=1e-4)

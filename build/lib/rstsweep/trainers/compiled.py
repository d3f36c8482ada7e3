"""The forward passes of a training step, eager or compiled with `torch.compile`.

`Passes.base` runs the base step's forward (X_t = 0), `Passes.sa` the forwards of the
sharpness-aware step (at θ and at θ+ε). Compiled, they are two separate functions, so each has its
own Dynamo cache and guards: the base branch never recompiles because of the SA branch and the
other way round, and each branch's first step (excluded from the mean step times) pays its own
compile. Both passes of the SA step see the same module (the BN freezing of the second pass
changes no attribute: `sam.disable_running_stats`), so they share one graph and never recompile.
Backward runs through the graphs AOTAutograd compiled with the forwards; the optimizer's
multi-tensor (foreach) arithmetic and the loss stay eager. Evaluation stays eager (BN in eval
mode would be a third graph for a pass that is not timed).

Torch only: importable without pydantic (the GPU benchmark uses it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

Forward = Callable[[nn.Module, Tensor], Tensor]


def _eager(model: nn.Module, x: Tensor) -> Tensor:
    return model(x)


# Two functions with their own code objects: Dynamo keys its cache by code object.
def _base_forward(model: nn.Module, x: Tensor) -> Tensor:
    return model(x)


def _sa_forward(model: nn.Module, x: Tensor) -> Tensor:
    return model(x)


@dataclass(frozen=True)
class Passes:
    """The forward of the base step and of the sharpness-aware step."""

    base: Forward = _eager
    sa: Forward = _eager
    compiled: bool = False


EAGER = Passes()


def compiled_passes(backend: str = "inductor", mode: str | None = None) -> Passes:
    """torch.compile'd base and SA forwards (`backend`/`mode` as torch.compile's)."""
    return Passes(
        base=torch.compile(_base_forward, backend=backend, mode=mode),
        sa=torch.compile(_sa_forward, backend=backend, mode=mode),
        compiled=True,
    )

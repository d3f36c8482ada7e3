"""One RST training step and the evaluation pass.

X_t = 0: a genuine one-pass base step (forward, backward, `optimizer.base_step()`).
X_t = 1: the sharpness-aware step of the optimizer: forward/backward at θ, `first_step` (θ → θ+ε),
a second forward/backward at θ+ε with BatchNorm running statistics frozen (they come from the first
pass only), `second_step` (back to θ, update). What is algorithm-specific sits behind the
optimizer's hooks: `needs_second_pass()` (LookSAM's reuse steps take the one-pass `reuse_step()`),
`wants_sample_losses` and `second_pass_batch(...)` (ESAM's data selection picks the samples of the
second pass). Epoch sums stay on the device: nothing here syncs with the host.

With `wants_signal` (closed-loop policies) the step also leaves `ctx.signal`, a device tensor
[‖g‖², loss] of the first pass (before clipping), for the policy's next decisions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rstsweep.trainers.runtime import Runtime, to_memory_format
from rstsweep.trainers.sam import SAM, global_norm


@dataclass
class StepContext:
    """Everything a training step touches (built once per cell)."""

    model: nn.Module
    optimizer: SAM
    scheduler: torch.optim.lr_scheduler.LRScheduler
    runtime: Runtime
    label_smoothing: float
    disable_running_stats: Callable[[nn.Module], contextlib.AbstractContextManager]
    wants_signal: bool = False
    loss_sum: Tensor = field(init=False)
    correct: Tensor = field(init=False)
    signal: Tensor | None = field(init=False, default=None)

    def sample_losses(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-sample losses at the current weights, without gradients (for data selection)."""
        with torch.no_grad(), self.runtime.autocast():
            out = self.model(x)
            return F.cross_entropy(out, y, label_smoothing=self.label_smoothing, reduction="none")

    def reset_epoch_sums(self) -> None:
        self.loss_sum = torch.zeros((), device=self.runtime.device, dtype=torch.float32)
        self.correct = torch.zeros((), device=self.runtime.device, dtype=torch.int64)


def train_step(ctx: StepContext, x: Tensor, y: Tensor, sa: bool) -> None:
    """One RST step at the current θ: base (X_t = 0) or sharpness-aware (X_t = 1)."""
    model, opt = ctx.model, ctx.optimizer
    opt.zero_grad(set_to_none=True)
    per_sample = sa and opt.wants_sample_losses  # e.g. ESAM ranks samples by loss increase
    with ctx.runtime.autocast():
        out = model(x)
        losses = F.cross_entropy(
            out, y, label_smoothing=ctx.label_smoothing, reduction="none" if per_sample else "mean"
        )
        loss = losses.mean() if per_sample else losses
    loss.backward()
    if ctx.wants_signal:
        ctx.signal = first_pass_signal(model, loss)
    if not sa:
        opt.base_step()
    elif opt.needs_second_pass():
        opt.first_step(zero_grad=True)
        # backward inside the block: BN's autograd node holds the running-stat buffers, which the
        # block restores in place on exit.
        with ctx.disable_running_stats(model):
            x2, y2 = opt.second_pass_batch(ctx.sample_losses, x, y, losses.detach())
            with ctx.runtime.autocast():
                second = F.cross_entropy(model(x2), y2, label_smoothing=ctx.label_smoothing)
            second.backward()
        opt.second_step(zero_grad=False)
    else:
        opt.reuse_step()
    ctx.scheduler.step()
    # Epoch sums stay on the device: read once per epoch (no .item() in the hot loop).
    ctx.loss_sum += loss.detach().float()
    ctx.correct += (out.detach().argmax(dim=1) == y).sum()


@torch.no_grad()
def first_pass_signal(model: nn.Module, loss: Tensor) -> Tensor:
    """[‖g‖², loss] of the first pass as one float32 device tensor (no host sync)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    grad_sq = global_norm(grads).float() ** 2
    return torch.stack([grad_sq, loss.detach().float()])


@torch.no_grad()
def evaluate(
    model: nn.Module, batches: Iterator[tuple[Tensor, Tensor]], runtime: Runtime
) -> tuple[float, float]:
    """Mean cross-entropy (no smoothing) and error fraction over the test batches."""
    model.eval()
    loss_sum = torch.zeros((), device=runtime.device, dtype=torch.float32)
    wrong = torch.zeros((), device=runtime.device, dtype=torch.int64)
    n = 0
    for x, y in batches:
        x = to_memory_format(x, runtime)
        with runtime.autocast():
            out = model(x)
        loss_sum += F.cross_entropy(out.float(), y, reduction="sum")
        wrong += (out.argmax(dim=1) != y).sum()
        n += y.shape[0]
    model.train()
    if n == 0:
        return float("nan"), float("nan")
    return loss_sum.item() / n, wrong.item() / n

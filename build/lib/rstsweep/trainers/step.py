"""One RST training step and the evaluation pass.

X_t = 0: a genuine one-pass base step (forward, backward, `optimizer.base_step()`).
X_t = 1: the sharpness-aware step of the optimizer: forward/backward at θ, `first_step` (θ → θ+ε),
a second forward/backward at θ+ε with BatchNorm running statistics frozen (they come from the first
pass only), `second_step` (back to θ, update). What is algorithm-specific sits behind the
optimizer's hooks: `before_first_pass()` (ESAM turns off the weight gradients of the tensors it
does not perturb), `needs_second_pass()` (LookSAM's reuse steps take the one-pass `reuse_step()`),
`wants_sample_losses` and `second_pass_batch(...)` (ESAM's data selection picks the samples of the
second pass). Epoch sums stay on the device: nothing here syncs with the host (except fp16's
overflow checks). Two more hooks: `passes` (the forwards, eager or compiled: `compiled.py`) and
`scaling` (fp16 loss scaling: `precision.py`; an overflowing step is skipped with θ unchanged).

With `wants_signal` (closed-loop policies) the step also leaves `ctx.signal`, a device tensor
[‖g‖², loss] of the first pass (unscaled, before clipping), for the policy's next decisions.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rstsweep.trainers.compiled import EAGER, Passes
from rstsweep.trainers.precision import LossScaling
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
    # Data parallelism (`distributed.py`): the module the passes call (the DDP wrapper; None: the
    # model itself) and the context of a pass whose gradients stay local (DDP's `no_sync`).
    net: nn.Module | None = None
    no_sync: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    passes: Passes = EAGER
    scaling: LossScaling | None = None  # None: built for the runtime's precision
    wants_signal: bool = False
    loss_sum: Tensor = field(init=False)
    correct: Tensor = field(init=False)
    signal: Tensor | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.scaling is None:
            self.scaling = LossScaling(self.runtime.precision, self.runtime.device, self.optimizer)

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
    model, opt = (ctx.net or ctx.model), ctx.optimizer
    opt.zero_grad(set_to_none=True)
    per_sample = sa and opt.wants_sample_losses  # e.g. ESAM ranks samples by loss increase
    scaling = ctx.scaling
    assert scaling is not None  # set in __post_init__
    forward = ctx.passes.sa if sa else ctx.passes.base
    # Under data parallelism the first pass of a two-pass step keeps its gradient local (each
    # worker perturbs with its own, as in Foret et al.'s m-sharpness): its forward runs under
    # `no_sync`. One-pass steps and second passes all-reduce.
    two_pass = sa and opt.needs_second_pass()
    if sa:
        opt.before_first_pass()  # e.g. ESAM: tensors not perturbed skip their weight gradient
    with ctx.no_sync() if two_pass else contextlib.nullcontext(), ctx.runtime.autocast():
        out = forward(model, x)
        losses = F.cross_entropy(
            out, y, label_smoothing=ctx.label_smoothing, reduction="none" if per_sample else "mean"
        )
        loss = losses.mean() if per_sample else losses
    scaling.backward(loss)  # DDP decided in the forward whether this backward all-reduces
    finite = scaling.unscale_finite()
    if ctx.wants_signal:
        ctx.signal = first_pass_signal(model, loss)
    if not finite:  # fp16 overflow in the first pass: skip, θ never moved
        if sa:
            opt.abandon_first_pass()
        scaling.skipped()
    elif not sa:
        opt.base_step()
        scaling.stepped()
    elif two_pass:
        opt.first_step(zero_grad=True)
        # backward inside the block, which writes the first pass's BN statistics back on exit
        with ctx.disable_running_stats(model):
            x2, y2 = opt.second_pass_batch(ctx.sample_losses, x, y, losses.detach())
            with ctx.runtime.autocast():
                logits = ctx.passes.sa(model, x2)
                second = F.cross_entropy(logits, y2, label_smoothing=ctx.label_smoothing)
            scaling.backward(second)
        if scaling.unscale_finite(second_pass=True):
            opt.second_step(zero_grad=False)
            scaling.stepped()
        else:  # fp16 overflow at θ+ε: back to θ, no update
            opt.undo_first_step()
            scaling.skipped()
    else:
        opt.reuse_step()
        scaling.stepped()
    ctx.scheduler.step()
    # Epoch sums stay on the device: read once per epoch (no .item() in the hot loop).
    ctx.loss_sum += loss.detach().float()
    labels = y if y.dim() == 1 else y.argmax(dim=1)  # mixup's soft targets: the dominant class
    ctx.correct += (out.detach().argmax(dim=1) == labels).sum()


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

"""One RST training step and the evaluation pass.

The coin X_t picks the step (`train_step`, a dispatcher over three named kinds):

- X_t = 0, `base_step`: a genuine one-pass base step (forward, backward, `optimizer.base_step()`).
- X_t = 1, `two_pass_step`: the sharpness-aware step, read top-down as in davda54/sam: gradient at
  θ, climb to θ+ε (`first_step`), gradient at θ+ε with BatchNorm running statistics frozen (they
  come from the first pass only), back to θ and update (`second_step`).
- X_t = 1 when the optimizer has no use for a second pass (LookSAM between its every-k-th full
  steps: `needs_second_pass()` is False), `reuse_step`: one pass and `optimizer.reuse_step()`.

What is algorithm-specific sits behind the optimizer's hooks: `before_first_pass()` (ESAM turns
off the weight gradients of the tensors it does not perturb), `wants_sample_losses` and
`second_pass_batch(...)` (ESAM's data selection picks the samples of the second pass). Two more
hooks: `passes` (the forwards, eager or compiled: `compiled.py`) and `scaling` (fp16 loss
scaling: `precision.py`; a step whose gradients overflow is skipped with θ unchanged, in `_skip`).
Epoch sums stay on the device: nothing here syncs with the host (except fp16's overflow checks).

With `wants_signal` (closed-loop policies) the step also leaves `ctx.signal`, a device tensor
[‖g‖², loss] of the first pass (unscaled, before clipping), for the policy's next decisions. A
policy deciding from the step's own signal (`signal_lag: 0`) passes a callable as the coin
(`decided_step`): the first pass runs as a base step's (every weight gradient), then the callable
reads the signal and the step goes on as the kind it picked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rstsweep.trainers.compiled import EAGER, Forward, Passes
from rstsweep.trainers.precision import LossScaling
from rstsweep.trainers.runtime import Runtime, to_memory_format
from rstsweep.trainers.sam import SAM, global_norm

Decider = Callable[[Tensor], bool]  # X_t from the first pass's signal [‖g‖², loss] (lag 0)


@dataclass
class StepContext:
    """Everything a training step touches (built once per run)."""

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

    @property
    def loss_scaling(self) -> LossScaling:
        assert self.scaling is not None  # set in __post_init__
        return self.scaling

    def sample_losses(self, x: Tensor, y: Tensor) -> Tensor:
        """Per-sample losses at the current weights, without gradients (for data selection)."""
        with torch.no_grad(), self.runtime.autocast():
            out = self.model(x)
            return F.cross_entropy(out, y, label_smoothing=self.label_smoothing, reduction="none")

    def reset_epoch_sums(self) -> None:
        self.loss_sum = torch.zeros((), device=self.runtime.device, dtype=torch.float32)
        self.correct = torch.zeros((), device=self.runtime.device, dtype=torch.int64)

    def add_to_epoch_sums(self, first: FirstPass, y: Tensor) -> None:
        """Add a step's first-pass loss and correct count (on the device: read once per epoch,
        no .item() in the hot loop)."""
        self.loss_sum += first.loss.detach().float()
        labels = y if y.dim() == 1 else y.argmax(dim=1)  # mixup's soft targets: the dominant class
        self.correct += (first.out.detach().argmax(dim=1) == labels).sum()


@dataclass
class FirstPass:
    """The forward-backward at θ that every step begins with."""

    out: Tensor  # the logits
    losses: Tensor  # per-sample losses when the optimizer ranks samples (ESAM), else the mean
    loss: Tensor  # the mean loss
    finite: bool  # its gradients are finite (always, except under fp16 loss scaling)


def train_step(ctx: StepContext, x: Tensor, y: Tensor, sa: bool | Decider) -> bool:
    """One RST step at the current θ: base (coin X_t = 0) or sharpness-aware (X_t = 1); `sa` is
    X_t, or a callable deciding it from this step's first-pass signal. Returns X_t."""
    ctx.optimizer.zero_grad(set_to_none=True)
    if callable(sa):
        first, sa = decided_step(ctx, x, y, sa)
    elif not sa:
        first = base_step(ctx, x, y)
    elif ctx.optimizer.needs_second_pass():
        first = two_pass_step(ctx, x, y)
    else:
        first = reuse_step(ctx, x, y)
    ctx.scheduler.step()
    ctx.add_to_epoch_sums(first, y)
    return sa


def base_step(ctx: StepContext, x: Tensor, y: Tensor, first: FirstPass | None = None) -> FirstPass:
    """X_t = 0: one forward-backward and the base optimizer's step."""
    first = first or first_pass(ctx, ctx.passes.base, x, y)
    if not first.finite:
        return _skip(ctx, first, undo=lambda: None)
    ctx.optimizer.base_step()
    ctx.loss_scaling.stepped()
    return first


def two_pass_step(
    ctx: StepContext, x: Tensor, y: Tensor, first: FirstPass | None = None
) -> FirstPass:
    """X_t = 1: SAM's two passes (Foret et al. 2021), the optimizer's variant of ε and update."""
    opt, model, scaling = ctx.optimizer, (ctx.net or ctx.model), ctx.loss_scaling
    if first is None:
        opt.before_first_pass()  # e.g. ESAM: tensors not perturbed skip their weight gradient
        # Gradient g at θ. Under data parallelism it stays local (each worker perturbs with its
        # own, as in Foret et al.'s m-sharpness): the first pass runs under DDP's `no_sync`.
        first = first_pass(ctx, ctx.passes.sa, x, y, sa=True, local=True)
    if not first.finite:
        return _skip(ctx, first, undo=opt.abandon_first_pass)
    # Climb to θ+ε.
    opt.first_step(zero_grad=True)
    # Gradient at θ+ε, BN running statistics frozen: the backward runs inside the block, which
    # writes the first pass's statistics back on exit. ESAM's data selection picks the samples.
    with ctx.disable_running_stats(model):
        x2, y2 = opt.second_pass_batch(ctx.sample_losses, x, y, first.losses.detach())
        with ctx.runtime.autocast():
            logits = ctx.passes.sa(model, x2)
            second = F.cross_entropy(logits, y2, label_smoothing=ctx.label_smoothing)
        scaling.backward(second)  # the second pass all-reduces under data parallelism
    if not scaling.unscale_finite(second_pass=True):
        return _skip(ctx, first, undo=opt.undo_first_step)
    # Back to θ, sharpness-aware update.
    opt.second_step(zero_grad=False)
    scaling.stepped()
    return first


def reuse_step(ctx: StepContext, x: Tensor, y: Tensor, first: FirstPass | None = None) -> FirstPass:
    """X_t = 1 without a second pass: LookSAM's g plus the stored sharpness direction g_v."""
    if first is None:
        ctx.optimizer.before_first_pass()
        first = first_pass(ctx, ctx.passes.sa, x, y, sa=True)
    if not first.finite:
        return _skip(ctx, first, undo=ctx.optimizer.abandon_first_pass)
    ctx.optimizer.reuse_step()
    ctx.loss_scaling.stepped()
    return first


def decided_step(ctx: StepContext, x: Tensor, y: Tensor, decide: Decider) -> tuple[FirstPass, bool]:
    """X_t from this step's own first pass (a policy with `signal_lag: 0`; one process): the
    first pass runs as a base step's, every weight gradient kept, then the signal picks the kind."""
    assert ctx.wants_signal, "a deciding step needs wants_signal"
    first = first_pass(ctx, ctx.passes.base, x, y, sa=True)  # sa: ESAM's per-sample losses
    assert ctx.signal is not None
    if not decide(ctx.signal):
        return base_step(ctx, x, y, first), False
    if ctx.optimizer.needs_second_pass():
        return two_pass_step(ctx, x, y, first), True
    return reuse_step(ctx, x, y, first), True


def first_pass(
    ctx: StepContext, forward: Forward, x: Tensor, y: Tensor, sa: bool = False, local: bool = False
) -> FirstPass:
    """Forward and backward at θ (`local`: the gradient is not all-reduced), the gradients
    unscaled, and the closed-loop signal left on the device."""
    model = ctx.net or ctx.model
    per_sample = sa and ctx.optimizer.wants_sample_losses  # e.g. ESAM ranks samples by loss
    with ctx.no_sync() if local else contextlib.nullcontext(), ctx.runtime.autocast():
        out = forward(model, x)
        reduction = "none" if per_sample else "mean"
        losses = F.cross_entropy(out, y, label_smoothing=ctx.label_smoothing, reduction=reduction)
        loss = losses.mean() if per_sample else losses
    ctx.loss_scaling.backward(loss)  # DDP decided in the forward whether this backward all-reduces
    finite = ctx.loss_scaling.unscale_finite()
    if ctx.wants_signal:
        ctx.signal = first_pass_signal(model, loss)
    return FirstPass(out, losses, loss, finite)


def _skip(ctx: StepContext, first: FirstPass, undo: Callable[[], None]) -> FirstPass:
    """An fp16 overflow: undo what the step began (θ back as it was), count the step skipped."""
    undo()
    ctx.loss_scaling.skipped()
    return first


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

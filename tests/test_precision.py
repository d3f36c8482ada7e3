"""fp16 with loss scaling around the RST step, on the CPU: a clean SAM step against a float64
hand computation of softmax regression, forced overflows in the first and in the second pass
(skipped, counted, θ and the optimizer state unchanged, the scale halved), the scaler's state in
a checkpoint, and how `precision` enters cell_id (with the legacy `amp` switch migrated)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from factories import crash_after_epoch, tiny_config
from rstsweep.core.config import CellConfig
from rstsweep.trainers.precision import LossScaling
from rstsweep.trainers.runtime import Runtime, resolve_precision
from rstsweep.trainers.sam import SAM, disable_running_stats
from rstsweep.trainers.step import StepContext, train_step

torch.set_num_threads(1)
CPU = torch.device("cpu")
LR, RHO = 0.5, 0.25
# fp16-exact inputs and weights (multiples of 1/8, small): the fp16 logits are exact
W0 = torch.tensor([[0.5, -0.25, 0.125], [-0.375, 0.75, 0.25]])  # 2 classes x 3 features
X = torch.tensor([[1.0, 0.5, -1.0], [0.25, -0.5, 1.0], [-1.0, 1.0, 0.5], [0.5, 0.5, 0.5]])
Y = torch.tensor([0, 1, 1, 0])


class BigSecondPass(SAM):
    """A SAM whose second pass sees the batch times 1024: its fp16 gradient overflows."""

    def second_pass_batch(self, sample_losses, x, y, losses):
        return x * 1024.0, y


def make_ctx(init_scale: float, opt_cls: type[SAM] = SAM, momentum: float = 0.9) -> StepContext:
    model = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(W0)
    opt = opt_cls(model.parameters(), torch.optim.SGD, rho=RHO, lr=LR, momentum=momentum)
    ctx = StepContext(
        model=model,
        optimizer=opt,
        scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0),
        runtime=Runtime(device=CPU, precision="fp16", channels_last=False),
        label_smoothing=0.0,
        disable_running_stats=disable_running_stats,
        scaling=LossScaling("fp16", CPU, opt, init_scale=init_scale),
    )
    ctx.reset_epoch_sums()
    return ctx


def softmax_grad(w: torch.Tensor) -> torch.Tensor:
    """∇_W mean CE(x Wᵀ, y) = (softmax(x Wᵀ) − onehot(y))ᵀ x / N, in float64."""
    x, w = X.double(), w.double()
    p = torch.softmax(x @ w.T, dim=1)
    return (p - F.one_hot(Y, 2).double()).T @ x / len(Y)


def test_clean_fp16_sam_step_matches_the_hand_computed_sam_update():
    ctx = make_ctx(init_scale=2.0**10, momentum=0.0)
    train_step(ctx, X, Y, sa=True)
    g = softmax_grad(W0)
    eps = RHO * g / g.norm()
    expected = W0.double() - LR * softmax_grad(W0.double() + eps)
    got = ctx.model.weight.detach().double()
    # the update itself agrees to fp16 rounding of the gradients (~1e-3 relative)
    torch.testing.assert_close(got - W0, expected - W0, rtol=5e-3, atol=2e-4)
    assert ctx.scaling.skipped_steps == 0 and ctx.scaling.scale == 2.0**10
    assert not ctx.optimizer._perturbed


@pytest.mark.parametrize("sa", [False, True])
def test_first_pass_overflow_is_skipped_counted_and_leaves_theta_untouched(sa):
    # S = 2^30: S·(p − y)/N is far above fp16's max (65504) in the backward of the matmul
    ctx = make_ctx(init_scale=2.0**30)
    lr_before = ctx.optimizer.param_groups[0]["lr"]
    train_step(ctx, X, Y, sa=sa)
    assert torch.equal(ctx.model.weight.detach(), W0)
    assert not ctx.optimizer._perturbed and ctx.model.weight.grad is None
    assert ctx.optimizer.base_optimizer.state == {} or all(
        "momentum_buffer" not in s for s in ctx.optimizer.base_optimizer.state.values()
    )
    assert ctx.scaling.skipped_steps == 1 and ctx.scaling.scale == 2.0**29
    assert ctx.optimizer.param_groups[0]["lr"] == lr_before  # the schedule still advanced a step
    # the scaler backs off until the step fits: 2^30 -> ... -> a scale that does not overflow
    for _ in range(30):
        train_step(ctx, X, Y, sa=sa)
        if not torch.equal(ctx.model.weight.detach(), W0):
            break
    assert not torch.equal(ctx.model.weight.detach(), W0)
    assert ctx.scaling.skipped_steps >= 2 and ctx.scaling.scale < 2.0**29


def test_second_pass_overflow_restores_theta_exactly_and_skips_the_update():
    ctx = make_ctx(init_scale=2.0**10, opt_cls=BigSecondPass)
    train_step(ctx, X, Y, sa=True)
    assert torch.equal(ctx.model.weight.detach(), W0)  # θ+ε undone bit-exactly
    assert not ctx.optimizer._perturbed and ctx.model.weight.grad is None
    assert "momentum_buffer" not in ctx.optimizer.base_optimizer.state.get(ctx.model.weight, {})
    assert ctx.scaling.skipped_steps == 1 and ctx.scaling.scale == 2.0**9
    train_step(ctx, X, Y, sa=False)  # a base step at the lowered scale goes through
    assert not torch.equal(ctx.model.weight.detach(), W0) and ctx.scaling.skipped_steps == 1


def test_scaler_state_round_trips_through_a_state_dict():
    ctx = make_ctx(init_scale=2.0**30)
    train_step(ctx, X, Y, sa=True)
    state = ctx.scaling.state_dict()
    fresh = make_ctx(init_scale=2.0**5).scaling
    fresh.load_state_dict(state)
    assert (fresh.scale, fresh.skipped_steps) == (2.0**29, 1)


def test_scaling_is_a_no_op_for_fp32_and_bf16():
    for precision in ("fp32", "bf16"):
        scaling = LossScaling(precision, CPU, make_ctx(1.0).optimizer)
        assert not scaling.enabled and scaling.scale == 1.0 and scaling.unscale_finite()


def test_precision_auto_resolves_per_device_and_explicit_values_enter_cell_id():
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    assert resolve_precision("auto", CPU) == "fp32"
    assert resolve_precision("fp16", CPU) == "fp16"
    ids = {p: CellConfig(precision=p).cell_id() for p in ("auto", "fp32", "bf16", "fp16")}
    assert len(set(ids.values())) == 4
    # `auto` is left out of the identity: the id is the one from before the field existed
    assert "precision" not in CellConfig().identity()
    # runtime-only switches do not change the id
    runtime = CellConfig(compile=True, deterministic=True, memory_fraction=0.25, threads=2)
    assert runtime.cell_id() == ids["auto"]


def test_legacy_amp_switch_is_migrated():
    assert CellConfig(amp=True).precision == "auto"
    assert CellConfig(amp=None).precision == "auto"
    assert CellConfig(amp=False).precision == "fp32"
    assert CellConfig(amp=True, precision="fp16").precision == "fp16"
    with pytest.raises(ValueError, match="amp: False contradicts precision: bf16"):
        CellConfig(amp=False, precision="bf16")
    with pytest.raises(ValueError, match="precision"):
        CellConfig(precision="fp8")


def test_fp16_cell_resumes_bit_identical_with_its_scaler_state(tmp_path):
    from rstsweep.trainers.checkpoint import load_checkpoint
    from rstsweep.trainers.loop import train

    config = tiny_config(epochs=2, seed=4, schedule="constant(0.5)", precision="fp16")
    straight = train(config, out_dir=tmp_path / "straight")
    crash_after_epoch(train, config, tmp_path / "resumed")
    state = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    assert state["scaling"]["scaler"]["scale"] > 0 and "skipped_steps" in state["scaling"]
    resumed = train(config, out_dir=tmp_path / "resumed", resume=True)
    weights = [torch.load(d / "final.pt") for d in (tmp_path / "straight", tmp_path / "resumed")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert resumed.train_loss == straight.train_loss
    assert resumed.skipped_steps == straight.skipped_steps

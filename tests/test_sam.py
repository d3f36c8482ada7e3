"""SAM-family optimizers checked against an independent flat-vector implementation written here.

The reference keeps θ as one flat float64 vector, computes gradients with
torch.func.functional_call, forms every variant's update gradient with plain tensor algebra, and
hands it to the same base optimizer class on a single flat parameter. The optimizer under test
runs the trainer's per-step usage on a tiny MLP with a BatchNorm layer.
"""

from __future__ import annotations

import copy
import io

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from rstsweep.trainers.sam import SAM, disable_running_stats, global_norm
from rstsweep.trainers.variants import GSAM, LookSAM

torch.set_num_threads(1)
STEPS = 6


def make_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 3)).double()


def make_batches(n: int = STEPS, seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        (
            torch.randn(8, 3, generator=gen, dtype=torch.float64),
            torch.randint(0, 3, (8,), generator=gen),
        )
        for _ in range(n)
    ]


def flat_params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).clone()


def bn_buffers(model: nn.Module) -> list[torch.Tensor]:
    return [b.detach().clone() for b in model.buffers()]


# ----------------------------------------------------------------------------- the trainer's usage
def sa_step(model: nn.Module, opt: SAM, x: torch.Tensor, y: torch.Tensor) -> None:
    """One sharpness-aware step exactly as the RST loop does it (pass 1 included)."""
    F.cross_entropy(model(x), y).backward()
    if opt.needs_second_pass():
        opt.first_step(zero_grad=True)
        with disable_running_stats(model):
            F.cross_entropy(model(x), y).backward()
        opt.second_step(zero_grad=True)
    else:
        opt.reuse_step(zero_grad=True)


def base_step(model: nn.Module, opt: SAM, x: torch.Tensor, y: torch.Tensor) -> None:
    F.cross_entropy(model(x), y).backward()
    opt.base_step(zero_grad=True)


def run(model, opt, batches, coins=None) -> list[torch.Tensor]:
    """Flat θ after every step; coins[t] False takes a base step."""
    out = []
    for t, (x, y) in enumerate(batches):
        (sa_step if coins is None or coins[t] else base_step)(model, opt, x, y)
        out.append(flat_params(model))
    return out


# ----------------------------------------------------------------------------- the reference
class Reference:
    """θ flat; grad(θ) at a batch; the base optimizer class stepping one flat parameter."""

    def __init__(self, model: nn.Module, base_cls, clip=None, **base_kwargs):
        self.model = model
        self.names = [n for n, _ in model.named_parameters()]
        self.shapes = [p.shape for p in model.parameters()]
        self.buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
        self.theta = nn.Parameter(flat_params(model))
        self.base = base_cls([self.theta], **base_kwargs)
        self.clip = clip

    def grad(self, theta: torch.Tensor, x, y, update_stats: bool) -> torch.Tensor:
        theta = theta.detach().requires_grad_()
        parts = dict(zip(self.names, theta.split([s.numel() for s in self.shapes]), strict=True))
        params = {n: v.view(s) for (n, v), s in zip(parts.items(), self.shapes, strict=True)}
        buffers = self.buffers if update_stats else {n: b.clone() for n, b in self.buffers.items()}
        loss = F.cross_entropy(functional_call(self.model, {**params, **buffers}, (x,)), y)
        return torch.autograd.grad(loss, theta)[0]

    def step(self, x, y, update) -> torch.Tensor:
        """update(θ, g, G) -> u, where G(θ') is the second-pass gradient (no BN stats update)."""
        theta = self.theta.detach()
        g = self.grad(theta, x, y, update_stats=True)
        u = update(theta, g, lambda th: self.grad(th, x, y, update_stats=False))
        if self.clip is not None:
            u = u * min(1.0, self.clip / (u.norm().item() + 1e-6))
        self.theta.grad = u
        self.base.step()
        return self.theta.detach().clone()


def sam_update(rho, alpha=1.0):
    def update(theta, g, G):
        gs = G(theta + rho * g / g.norm())
        return (1 - alpha) * g + alpha * gs

    return update


def asam_update(rho, eta):
    def update(theta, g, G):
        t = theta.abs() + eta
        return G(theta + rho * t * t * g / (t * g).norm())

    return update


def gsam_update(rho, gamma):
    def update(theta, g, G):
        gs = G(theta + rho * g / g.norm())
        g_perp = g - (g @ gs) / (gs @ gs) * gs
        return gs - gamma * g_perp

    return update


def looksam_update(rho, k, a, alpha=1.0):
    state = {"count": 0, "g_v": None}

    def update(theta, g, G):
        full = state["count"] % k == 0
        state["count"] += 1
        if full:
            gs = G(theta + rho * g / g.norm())
            state["g_v"] = gs - (g @ gs) / (g @ g) * g
        else:
            g_v = state["g_v"]
            gs = g + a * g.norm() / g_v.norm() * g_v
        return (1 - alpha) * g + alpha * gs

    return update


SGD_KW = dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-3)

CASES = {
    "sam": (lambda ps: SAM(ps, torch.optim.SGD, rho=0.3, **SGD_KW), sam_update(0.3)),
    "gnr-0.5": (
        lambda ps: SAM(ps, torch.optim.SGD, rho=0.3, alpha=0.5, **SGD_KW),
        sam_update(0.3, 0.5),
    ),
    "gnr-2": (
        lambda ps: SAM(ps, torch.optim.SGD, rho=0.3, alpha=2.0, **SGD_KW),
        sam_update(0.3, 2.0),
    ),
    "asam": (
        lambda ps: SAM(ps, torch.optim.SGD, rho=1.0, adaptive=True, eta=0.01, **SGD_KW),
        asam_update(1.0, 0.01),
    ),
    "gsam": (
        lambda ps: GSAM(ps, torch.optim.SGD, rho=0.3, gsam_alpha=0.4, **SGD_KW),
        gsam_update(0.3, 0.4),
    ),
    "looksam": (
        lambda ps: LookSAM(ps, torch.optim.SGD, rho=0.3, k=3, looksam_alpha=0.7, **SGD_KW),
        looksam_update(0.3, 3, 0.7),
    ),
    "looksam-gnr": (
        lambda ps: LookSAM(
            ps, torch.optim.SGD, rho=0.3, k=2, looksam_alpha=0.7, alpha=1.8, **SGD_KW
        ),
        looksam_update(0.3, 2, 0.7, 1.8),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_updates_match_independent_implementation(name):
    make_opt, update = CASES[name]
    model, batches = make_model(), make_batches()
    ref = Reference(copy.deepcopy(model), torch.optim.SGD, **SGD_KW)
    ours = run(model, make_opt(model.parameters()), batches)
    for t, (x, y) in enumerate(batches):
        expected = ref.step(x, y, update)
        torch.testing.assert_close(ours[t], expected, rtol=1e-9, atol=1e-11, msg=f"{name} step {t}")
    # the trajectory moved: a wrong update would have been visible
    assert (ours[-1] - flat_params(make_model())).abs().max() > 1e-3
    # BN running stats match the reference's (first pass only)
    for ours_b, ref_b in zip(model.buffers(), ref.buffers.values(), strict=True):
        torch.testing.assert_close(ours_b, ref_b, rtol=1e-10, atol=1e-12)


def test_variants_differ_from_plain_sam():
    """The comparison above can fail: every variant's trajectory differs from SAM's."""
    finals = {}
    for name, (make_opt, _) in CASES.items():
        model = make_model()
        finals[name] = run(model, make_opt(model.parameters()), make_batches())[-1]
    for name, final in finals.items():
        if name != "sam":
            assert (final - finals["sam"]).abs().max() > 1e-6, name


def test_adam_base_and_clipping_match_reference():
    model, batches = make_model(), make_batches()
    kw = dict(lr=0.01, weight_decay=1e-2)
    ref = Reference(copy.deepcopy(model), torch.optim.AdamW, clip=0.05, **kw)
    opt = SAM(model.parameters(), torch.optim.AdamW, rho=0.2, alpha=1.5, max_grad_norm=0.05, **kw)
    coins = [True, False, True, True, False, True]
    ours = run(model, opt, batches, coins)
    for t, (x, y) in enumerate(batches):
        update = sam_update(0.2, 1.5) if coins[t] else (lambda theta, g, G: g)
        # Adam divides by √v: rounding differences of the gradient are amplified a little
        torch.testing.assert_close(ours[t], ref.step(x, y, update), rtol=1e-8, atol=1e-10)


def test_alpha_zero_is_the_base_optimizer_exactly():
    model_a, model_b, batches = make_model(), make_model(), make_batches()
    sam = SAM(model_a.parameters(), torch.optim.SGD, rho=0.3, alpha=0.0, **SGD_KW)
    sgd = torch.optim.SGD(model_b.parameters(), **SGD_KW)
    for x, y in batches:
        sa_step(model_a, sam, x, y)
        F.cross_entropy(model_b(x), y).backward()
        sgd.step()
        sgd.zero_grad()
    for a, b in zip(model_a.state_dict().values(), model_b.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_alpha_one_is_sam_and_stores_no_g():
    model_a, model_b, batches = make_model(), make_model(), make_batches()
    a = SAM(model_a.parameters(), torch.optim.SGD, rho=0.3, alpha=1.0, **SGD_KW)
    b = SAM(model_b.parameters(), torch.optim.SGD, rho=0.3, **SGD_KW)  # the default is SAM
    x, y = batches[0]
    F.cross_entropy(model_a(x), y).backward()
    a.first_step()
    assert all("g" not in a.state[p] for p in model_a.parameters())
    a.zero_grad()
    F.cross_entropy(model_a(x), y).backward()
    a.second_step(zero_grad=True)
    sa_step(model_b, b, x, y)
    assert torch.equal(flat_params(model_a), flat_params(model_b))
    # and it is not the α = 0 update
    model_c = make_model()
    sa_step(model_c, SAM(model_c.parameters(), torch.optim.SGD, rho=0.3, alpha=0.0, **SGD_KW), x, y)
    assert not torch.allclose(flat_params(model_a), flat_params(model_c))


def test_gnr_mix_numerically():
    """One step, plain SGD lr 1: θ1 = θ0 − ((1−α)g + α g_s), with g and g_s from the SAM(α=1) and
    SGD(α=0) steps of the same start."""
    x, y = make_batches(1)[0]
    finals = {}
    for alpha in (0.0, 1.0, 2.5):
        model = make_model()
        sa_step(model, SAM(model.parameters(), torch.optim.SGD, rho=0.3, alpha=alpha, lr=1.0), x, y)
        finals[alpha] = flat_params(model)
    theta0 = flat_params(make_model())
    g, gs = theta0 - finals[0.0], theta0 - finals[1.0]
    torch.testing.assert_close(theta0 - finals[2.5], -1.5 * g + 2.5 * gs, rtol=1e-12, atol=1e-14)


def epsilon_of(opt: SAM, model: nn.Module, x, y) -> tuple[torch.Tensor, torch.Tensor]:
    """(ε, g) of one first_step: θ+ε − θ and the first-pass gradient."""
    F.cross_entropy(model(x), y).backward()
    g = torch.cat([p.grad.flatten() for p in model.parameters()]).clone()
    before = flat_params(model)
    opt.first_step()
    return flat_params(model) - before, g


def test_asam_epsilon_formula():
    model, (x, y) = make_model(), make_batches(1)[0]
    theta = flat_params(model)
    opt = SAM(model.parameters(), torch.optim.SGD, rho=2.0, adaptive=True, eta=0.05, lr=0.1)
    eps, g = epsilon_of(opt, model, x, y)
    t = theta.abs() + 0.05
    torch.testing.assert_close(eps, 2.0 * t**2 * g / (t * g).norm(), rtol=1e-10, atol=1e-14)
    assert abs((eps / t).norm().item() - 2.0) < 1e-9  # ‖T⁻¹ε‖ = ρ


def test_sam_epsilon_has_norm_rho_and_second_step_restores_theta_exactly():
    model, (x, y) = make_model(), make_batches(1)[0]
    theta = flat_params(model)
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.25, lr=0.0)
    eps, g = epsilon_of(opt, model, x, y)
    assert abs(eps.norm().item() - 0.25) < 1e-12
    torch.testing.assert_close(eps, 0.25 * g / g.norm(), rtol=1e-10, atol=1e-14)
    F.cross_entropy(model(x), y).backward()
    opt.second_step()  # lr 0: θ must come back bit-exactly
    assert torch.equal(flat_params(model), theta)


def test_rho_per_param_group_with_the_global_norm():
    model, (x, y) = make_model(), make_batches(1)[0]
    first, rest = list(model[0].parameters()), [*model[1].parameters(), *model[3].parameters()]
    opt = SAM([{"params": first, "rho": 0.5}, {"params": rest}], torch.optim.SGD, rho=0.1, lr=0.1)
    eps, g = epsilon_of(opt, model, x, y)
    n_first = sum(p.numel() for p in first)
    rho = torch.full_like(g, 0.1)
    rho[:n_first] = 0.5
    torch.testing.assert_close(eps, rho * g / g.norm(), rtol=1e-10, atol=1e-14)


def test_random_mask_fraction_and_epsilon_norm():
    torch.manual_seed(0)
    model = nn.Linear(100, 50).double()  # 5050 entries
    x, y = torch.randn(16, 100, dtype=torch.float64), torch.randint(0, 50, (16,))
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.1, mask_fraction=0.3, lr=0.1, mask_seed=7)
    masks = []
    for _ in range(2):
        eps, g = epsilon_of(opt, model, x, y)
        m = eps != 0
        n = m.numel()
        assert abs(m.sum().item() - 0.3 * n) < 5 * (0.3 * 0.7 * n) ** 0.5  # Binomial(n, 0.3)
        assert abs(eps.norm().item() - 0.1) < 1e-12
        gm = g * m
        torch.testing.assert_close(eps, 0.1 * gm / gm.norm(), rtol=1e-10, atol=1e-14)
        masks.append(m)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.second_step(zero_grad=True)
    assert not torch.equal(masks[0], masks[1])  # a fresh mask each first_step
    # the same seed draws the same masks
    torch.manual_seed(0)
    model2 = nn.Linear(100, 50).double()
    opt2 = SAM(
        model2.parameters(), torch.optim.SGD, rho=0.1, mask_fraction=0.3, lr=0.1, mask_seed=7
    )
    assert torch.equal(epsilon_of(opt2, model2, x, y)[0] != 0, masks[0])


def test_fisher_mask_is_top_g_squared():
    torch.manual_seed(0)
    model = nn.Linear(20, 10).double()  # 210 entries
    x, y = torch.randn(16, 20, dtype=torch.float64), torch.randint(0, 10, (16,))
    opt = SAM(
        model.parameters(), torch.optim.SGD, rho=0.1, mask_fraction=0.2, mask_kind="fisher", lr=0.1
    )
    eps, g = epsilon_of(opt, model, x, y)
    k = round(0.2 * 210)
    expected = torch.zeros(210, dtype=torch.bool)
    expected[torch.topk(g**2, k).indices] = True
    assert torch.equal(eps != 0, expected)
    assert abs(eps.norm().item() - 0.1) < 1e-12


def test_bn_running_stats_come_from_the_first_pass_only():
    model, (x, y) = make_model(), make_batches(1)[0]
    first_pass_only = copy.deepcopy(model)
    first_pass_only(x)  # train mode: one running-stats update
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.5, lr=0.1)
    sa_step(model, opt, x, y)
    for a, b in zip(bn_buffers(model), bn_buffers(first_pass_only), strict=True):
        assert torch.equal(a, b)
    # without the context manager the second pass would have moved them (the check can fail)
    unguarded = copy.deepcopy(first_pass_only)
    with torch.no_grad():
        unguarded[0].weight.add_(0.5)
    unguarded(x)
    assert not torch.equal(bn_buffers(unguarded)[0], bn_buffers(first_pass_only)[0])


@pytest.mark.parametrize("momentum", [0.1, None])  # None: BN's cumulative average
def test_disable_running_stats_keeps_buffers_and_allows_backward_after(momentum):
    bn = nn.BatchNorm1d(4, momentum=momentum).double()
    bn(torch.randn(8, 4, dtype=torch.float64))
    before = bn_buffers(bn)
    x = torch.randn(8, 4, dtype=torch.float64, requires_grad=True)
    with disable_running_stats(bn):
        loss = bn(x + 3).square().sum()
    loss.backward()  # nothing autograd saved was modified on exit
    assert x.grad is not None and bn.momentum == momentum
    assert all(torch.equal(a, b) for a, b in zip(bn_buffers(bn), before, strict=True))
    bn(x + 3)  # outside the block the statistics move again
    assert not torch.equal(bn_buffers(bn)[0], before[0])
    assert bn.num_batches_tracked.item() == 2


def test_rho_zero_sam_still_costs_two_passes():
    """ρ = 0 gives the SGD update but two forward passes: the RST loop's base branch must be
    base_step, never a ρ = 0 SAM step."""
    x, y = make_batches(1)[0]
    calls = []

    def counted(seed):
        model = make_model(seed)
        model.register_forward_hook(lambda *_: calls.append(1))
        return model

    model = counted(0)
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.0, lr=0.1)
    F.cross_entropy(model(x), y).backward()

    def closure():
        with disable_running_stats(model):
            F.cross_entropy(model(x), y).backward()

    opt.step(closure)
    assert len(calls) == 2
    calls.clear()
    model_sgd = counted(0)
    base_step(model_sgd, SAM(model_sgd.parameters(), torch.optim.SGD, rho=0.0, lr=0.1), x, y)
    assert len(calls) == 1
    torch.testing.assert_close(flat_params(model), flat_params(model_sgd), rtol=1e-12, atol=1e-14)


def test_step_closure_equals_first_second_step():
    model_a, model_b, batches = make_model(), make_model(), make_batches()
    a = LookSAM(model_a.parameters(), torch.optim.SGD, rho=0.3, k=2, **SGD_KW)
    b = LookSAM(model_b.parameters(), torch.optim.SGD, rho=0.3, k=2, **SGD_KW)
    for x, y in batches:
        sa_step(model_a, a, x, y)
        F.cross_entropy(model_b(x), y).backward()

        def closure(model=model_b, x=x, y=y):
            with disable_running_stats(model):
                F.cross_entropy(model(x), y).backward()

        b.step(closure)
        b.zero_grad()
    assert torch.equal(flat_params(model_a), flat_params(model_b))


def test_looksam_full_and_reuse_steps_and_base_steps_do_not_count():
    model, batches = make_model(), make_batches(9)
    opt = LookSAM(model.parameters(), torch.optim.SGD, rho=0.3, k=3, **SGD_KW)
    coins = [True, False, True, True, False, True, True, True, True]
    pattern = []
    for (x, y), coin in zip(batches, coins, strict=True):
        if coin:
            pattern.append(opt.needs_second_pass())
            sa_step(model, opt, x, y)
        else:
            base_step(model, opt, x, y)
    assert pattern == [True, False, False, True, False, False, True]
    assert opt.sa_steps == 7  # base steps are not SA steps


def test_looksam_reuse_refused_when_full_step_due():
    model, (x, y) = make_model(), make_batches(1)[0]
    opt = LookSAM(model.parameters(), torch.optim.SGD, rho=0.3, k=3, lr=0.1)
    F.cross_entropy(model(x), y).backward()
    assert opt.needs_second_pass()  # no g_v yet
    with pytest.raises(RuntimeError, match="full SAM step is due"):
        opt.reuse_step()


def test_clipping_in_base_step_limits_the_step():
    model, (x, y) = make_model(), make_batches(1)[0]
    before = flat_params(model)
    opt = SAM(model.parameters(), torch.optim.SGD, lr=1.0, max_grad_norm=0.01)
    F.cross_entropy(model(x), y).backward()
    g = torch.cat([p.grad.flatten() for p in model.parameters()]).clone()
    assert g.norm() > 0.1
    opt.base_step()
    step = flat_params(model) - before  # = −0.01·g/(‖g‖ + 1e-6), as clip_grad_norm_
    torch.testing.assert_close(step, -0.01 * g / (g.norm() + 1e-6), rtol=1e-10, atol=1e-15)
    # a large limit leaves the gradient alone
    model2 = make_model()
    F.cross_entropy(model2(x), y).backward()
    g = torch.cat([p.grad.flatten() for p in model2.parameters()]).clone()
    SAM(model2.parameters(), torch.optim.SGD, lr=1.0, max_grad_norm=1e6).base_step()
    torch.testing.assert_close(flat_params(model2), before - g, rtol=1e-12, atol=1e-14)


def test_params_without_grad_are_skipped():
    model, (x, y) = make_model(), make_batches(1)[0]
    extra = nn.Parameter(torch.ones(4, dtype=torch.float64))  # not in the graph: grad stays None
    opt = SAM([*model.parameters(), extra], torch.optim.SGD, rho=0.2, lr=0.1)
    eps, _ = epsilon_of(opt, model, x, y)
    assert torch.equal(extra.detach(), torch.ones(4, dtype=torch.float64))
    assert abs(eps.norm().item() - 0.2) < 1e-12  # the norm is over the params with a gradient
    F.cross_entropy(model(x), y).backward()
    opt.second_step()
    assert extra.grad is None and torch.equal(extra.detach(), torch.ones(4, dtype=torch.float64))


def test_norm_in_fp32_for_bf16():
    xs = [
        torch.full((1000,), 0.01, dtype=torch.bfloat16),
        torch.full((10,), 3.0, dtype=torch.bfloat16),
    ]
    n = global_norm(xs)
    assert n.dtype == torch.float32
    exact = sum(x.double().square().sum() for x in xs).sqrt()
    assert abs(n.item() - exact.item()) < 1e-5 * exact.item()


def test_misuse_raises():
    model, (x, y) = make_model(), make_batches(1)[0]
    opt = SAM(model.parameters(), torch.optim.SGD, lr=0.1)
    with pytest.raises(RuntimeError):
        opt.second_step()
    with pytest.raises(RuntimeError):
        opt.reuse_step()
    F.cross_entropy(model(x), y).backward()
    opt.first_step()
    with pytest.raises(RuntimeError):
        opt.base_step()
    with pytest.raises(ValueError, match="mask_fraction"):
        SAM(model.parameters(), torch.optim.SGD, mask_fraction=0.0, lr=0.1)


def test_lr_scheduler_drives_the_base_optimizer_without_warnings(recwarn):
    model, batches = make_model(), make_batches(3)
    opt = SAM(model.parameters(), torch.optim.SGD, lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5**t)
    for x, y in batches:
        base_step(model, opt, x, y)
        sched.step()
    assert opt.base_optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)
    assert not [w for w in recwarn if "lr_scheduler" in str(w.message)]


# ----------------------------------------------------------------------------- checkpoints
def roundtrip(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


RESUME_CASES = {
    "sam-mask": lambda ps: SAM(
        ps, torch.optim.SGD, rho=0.3, mask_fraction=0.5, mask_seed=3, **SGD_KW
    ),
    "looksam-mask": lambda ps: LookSAM(
        ps, torch.optim.SGD, rho=0.3, k=3, mask_fraction=0.5, **SGD_KW
    ),
    "gsam-adam": lambda ps: GSAM(ps, torch.optim.Adam, rho=0.3, gsam_alpha=0.3, lr=0.01),
}


@pytest.mark.parametrize("name", sorted(RESUME_CASES))
def test_state_dict_round_trip_continues_bit_identically(name):
    make_opt = RESUME_CASES[name]
    batches = make_batches(10)
    coins = [True, True, False, True, True, True, False, True, True, True]
    model = make_model()
    opt = make_opt(model.parameters())
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0 / (1 + t))
    for t in range(5):
        (sa_step if coins[t] else base_step)(model, opt, *batches[t])
        sched.step()
    saved = roundtrip(
        {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}
    )
    for t in range(5, 10):
        (sa_step if coins[t] else base_step)(model, opt, *batches[t])
        sched.step()

    resumed = make_model(seed=99)  # different init: everything must come from the checkpoint
    resumed.load_state_dict(saved["model"])
    opt2 = make_opt(resumed.parameters())
    sched2 = torch.optim.lr_scheduler.LambdaLR(opt2, lambda t: 1.0 / (1 + t))
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])
    for t in range(5, 10):
        (sa_step if coins[t] else base_step)(resumed, opt2, *batches[t])
        sched2.step()
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert opt2.base_optimizer.param_groups[0]["lr"] == opt.base_optimizer.param_groups[0]["lr"]


def test_resume_without_optimizer_state_differs():
    """The round-trip test can fail: dropping the optimizer state changes the continuation."""
    batches = make_batches(4)
    model = make_model()
    opt = RESUME_CASES["looksam-mask"](model.parameters())
    for x, y in batches[:2]:
        sa_step(model, opt, x, y)
    saved = roundtrip(model.state_dict())
    for x, y in batches[2:]:
        sa_step(model, opt, x, y)
    fresh = make_model()
    fresh.load_state_dict(saved)
    opt2 = RESUME_CASES["looksam-mask"](fresh.parameters())
    for x, y in batches[2:]:
        sa_step(fresh, opt2, x, y)
    assert not torch.equal(flat_params(model), flat_params(fresh))

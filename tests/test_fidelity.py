"""Fidelity of the update rules to their papers and reference code, against an independent fp64
implementation written here (a flat θ, gradients by torch.func.functional_call, every rule a few
lines of tensor algebra), driven through the trainer's real `train_step` with base steps mixed in:
official ASAM (weights scaled, biases not), the RST authors' ASAM, GSAM with ρ tied to the lr,
the authors' switches (L2 in the loss, normalised GNR mix, a second clip), ESAM's tensor-level
SWP with ρ/β and its data selection, G-RST's mix (1−α)·g + α·u on every tensor for ESAM and on
LookSAM's reuse steps (also normalised). Plus ESAM's choice, scaling and skipped first-pass
gradients.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.optim.lr_scheduler import LambdaLR

from rstsweep.trainers.runtime import Runtime
from rstsweep.trainers.sam import SAM, disable_running_stats
from rstsweep.trainers.step import StepContext, train_step
from rstsweep.trainers.variants import ESAM, GSAM, LookSAM

torch.set_num_threads(1)
SGD = dict(lr=0.1, momentum=0.9, nesterov=True)
WD = 5e-3
COINS = [True, False, True, True, False, True, True]


def lr_lambda(step: int) -> float:
    return 1.0 - 0.1 * step  # a decaying lr, so GSAM's ρ_t visibly follows it


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, 3)).double()


def make_batches() -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [
        (
            torch.randn(8, 3, generator=gen, dtype=torch.float64),
            torch.randint(0, 3, (8,), generator=gen),
        )
        for _ in COINS
    ]


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()]).clone()


def run_ours(model: nn.Module, opt: SAM, batches, coins=COINS) -> list[torch.Tensor]:
    ctx = StepContext(
        model,
        opt,
        LambdaLR(opt, lr_lambda),
        Runtime(torch.device("cpu"), "fp32", False),
        0.0,
        disable_running_stats,
    )
    ctx.reset_epoch_sums()
    out = []
    for (x, y), sa in zip(batches, coins, strict=True):
        train_step(ctx, x, y, sa)
        out.append(flat(model))
    return out


class Reference:
    """Flat θ; G(θ', idx) = ∇ mean loss on the samples idx at θ' (BN stats untouched)."""

    def __init__(self, model: nn.Module, weight_decay: float = WD, clips=()):
        self.model = copy.deepcopy(model)
        self.names = [n for n, _ in model.named_parameters()]
        self.sizes = [p.numel() for p in model.parameters()]
        self.shapes = [p.shape for p in model.parameters()]
        self.buffers = {n: b.detach().clone() for n, b in model.named_buffers()}
        self.is_weight = torch.cat(
            [
                torch.full((s,), float("weight" in n), dtype=torch.float64)
                for n, s in zip(self.names, self.sizes, strict=True)
            ]
        )
        self.tensor_of = torch.cat([torch.full((s,), i) for i, s in enumerate(self.sizes)])
        self.theta = nn.Parameter(flat(model))
        self.opt = torch.optim.SGD([self.theta], weight_decay=weight_decay, **SGD)
        self.sched = LambdaLR(self.opt, lr_lambda)
        self.clips = clips

    def losses(self, theta, x, y, stats: bool):
        parts = theta.split(self.sizes)
        params = {n: v.view(s) for n, v, s in zip(self.names, parts, self.shapes, strict=True)}
        buffers = self.buffers if stats else {n: b.clone() for n, b in self.buffers.items()}
        return F.cross_entropy(
            functional_call(self.model, {**params, **buffers}, (x,)), y, reduction="none"
        )

    def grad(self, theta, x, y, stats=False):
        theta = theta.detach().requires_grad_()
        return torch.autograd.grad(self.losses(theta, x, y, stats).mean(), theta)[0]

    def step(self, x, y, sa: bool, update) -> torch.Tensor:
        theta = self.theta.detach()
        g = self.grad(theta, x, y, stats=True)
        u = update(theta, g, x, y, self.opt.param_groups[0]["lr"]) if sa else update.base(theta, g)
        for c in self.clips:
            u = u * min(1.0, c / (u.norm().item() + 1e-6))
        self.theta.grad = u
        self.opt.step()
        self.sched.step()
        return self.theta.detach().clone()


def plain(base=lambda theta, g: g):
    def wrap(fn):
        fn.base = base
        return fn

    return wrap


def asam_official(ref: Reference, rho: float, eta: float):
    @plain()
    def update(theta, g, x, y, lr):
        t = torch.where(ref.is_weight > 0, theta.abs() + eta, torch.ones_like(theta))
        return ref.grad(theta + rho * t * t * g / (t * g).norm(), x, y)

    return update


def asam_rst(ref: Reference, rho: float):
    @plain()
    def update(theta, g, x, y, lr):
        t = theta.abs()
        return ref.grad(theta + rho * t * t * g / (t * g).norm(), x, y)

    return update


def gsam_lr(ref: Reference, rho: float, rho_min: float, gamma: float):
    @plain()
    def update(theta, g, x, y, lr):
        rho_t = rho_min + (rho - rho_min) * lr / SGD["lr"]
        gs = ref.grad(theta + rho_t * g / g.norm(), x, y)
        return gs - gamma * (g - (g @ gs) / (gs @ gs) * gs)

    return update


def authors_gnr(ref: Reference, rho: float, alpha: float, l2: float):
    @plain(base=lambda theta, g: g + l2 * theta)
    def update(theta, g, x, y, lr):
        g = g + l2 * theta
        eps = rho * g / g.norm()
        gs = ref.grad(theta + eps, x, y) + l2 * (theta + eps)
        return (1 - alpha) * g / g.norm() + alpha * gs

    return update


def mix(g, u, alpha: float, normalised: bool):
    """G-RST: (1−α)·g + α·u, or (1−α)·g/‖g‖ + α·u (the RST authors' `norm_perturbations`)."""
    return (1 - alpha) * (g / g.norm() if normalised else g) + alpha * u


def esam(ref: Reference, rho, beta, gamma, seed, alpha=1.0, normalised=False):
    gen = torch.Generator().manual_seed(seed)
    state = {"chosen": torch.ones(len(ref.sizes), dtype=torch.bool)}

    @plain()
    def update(theta, g, x, y, lr):
        g_c = g * state["chosen"][ref.tensor_of]  # only the chosen tensors are perturbed
        eps = (rho / beta) * g_c / g_c.norm()
        increase = ref.losses(theta + eps, x, y, False) - ref.losses(theta, x, y, False)
        idx = increase.topk(int(gamma * len(y))).indices
        u = ref.grad(theta + eps, x[idx], y[idx])
        draws = torch.rand(len(ref.sizes), generator=gen)
        state["chosen"] = draws < beta
        if not state["chosen"].any():
            state["chosen"][draws.argmin()] = True
        return mix(g, u, alpha, normalised)  # every tensor: the full first-pass g

    return update


def looksam(ref: Reference, rho, k, alpha_l, alpha, normalised):
    state = {"sa_steps": 0, "g_v": None}

    @plain()
    def update(theta, g, x, y, lr):
        if state["sa_steps"] % k == 0:  # full SAM step, storing g_v ⊥ g
            u = ref.grad(theta + rho * g / g.norm(), x, y)
            state["g_v"] = u - (g @ u) / (g @ g) * g
        else:  # reuse step, one pass
            u = g + alpha_l * g.norm() / state["g_v"].norm() * state["g_v"]
        state["sa_steps"] += 1
        return mix(g, u, alpha, normalised)

    return update


CASES = {
    "asam-official": (
        lambda ps: SAM(
            ps, torch.optim.SGD, rho=0.5, adaptive=True, eta=0.01, weight_decay=WD, **SGD
        ),
        lambda ref: asam_official(ref, 0.5, 0.01),
        {},
    ),
    "asam-rst": (
        lambda ps: SAM(
            ps,
            torch.optim.SGD,
            rho=0.5,
            adaptive=True,
            adaptive_variant="rst",
            weight_decay=WD,
            **SGD,
        ),
        lambda ref: asam_rst(ref, 0.5),
        {},
    ),
    "gsam-lr": (
        lambda ps: GSAM(
            ps, torch.optim.SGD, rho=0.3, gsam_alpha=0.4, rho_min=0.05, weight_decay=WD, **SGD
        ),
        lambda ref: gsam_lr(ref, 0.3, 0.05, 0.4),
        {},
    ),
    "authors-gnr": (
        lambda ps: SAM(
            ps,
            torch.optim.SGD,
            rho=0.3,
            alpha=2.0,
            l2=0.05,
            norm_perturbations=True,
            max_grad_norm=1.0,
            base_clip=0.5,
            weight_decay=0.0,
            **SGD,
        ),
        lambda ref: authors_gnr(ref, 0.3, 2.0, 0.05),
        {"weight_decay": 0.0, "clips": (1.0, 0.5)},
    ),
    "esam": (
        lambda ps: ESAM(
            ps,
            torch.optim.SGD,
            rho=0.3,
            beta=0.5,
            sample_fraction=0.5,
            choice_seed=3,
            weight_decay=WD,
            **SGD,
        ),
        lambda ref: esam(ref, 0.3, 0.5, 0.5, 3),
        {},
    ),
    "esam-gnr": (
        lambda ps: ESAM(
            ps,
            torch.optim.SGD,
            rho=0.3,
            beta=0.5,
            sample_fraction=0.5,
            choice_seed=3,
            alpha=0.5,
            weight_decay=WD,
            **SGD,
        ),
        lambda ref: esam(ref, 0.3, 0.5, 0.5, 3, alpha=0.5),
        {},
    ),
    "esam-authors-gnr": (
        lambda ps: ESAM(
            ps,
            torch.optim.SGD,
            rho=0.3,
            beta=0.5,
            sample_fraction=0.5,
            choice_seed=4,
            alpha=2.0,
            norm_perturbations=True,
            weight_decay=WD,
            **SGD,
        ),
        lambda ref: esam(ref, 0.3, 0.5, 0.5, 4, alpha=2.0, normalised=True),
        {},
    ),
    "looksam-authors-gnr": (
        lambda ps: LookSAM(
            ps,
            torch.optim.SGD,
            rho=0.3,
            k=2,
            looksam_alpha=0.7,
            alpha=0.5,
            norm_perturbations=True,
            weight_decay=WD,
            **SGD,
        ),
        lambda ref: looksam(ref, 0.3, 2, 0.7, 0.5, normalised=True),
        {},
    ),
    "looksam-gnr": (
        lambda ps: LookSAM(
            ps, torch.optim.SGD, rho=0.3, k=2, looksam_alpha=0.7, alpha=2.0, weight_decay=WD, **SGD
        ),
        lambda ref: looksam(ref, 0.3, 2, 0.7, 2.0, normalised=False),
        {},
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule_matches_independent_fp64_implementation(name: str) -> None:
    make_opt, make_update, ref_kw = CASES[name]
    model, batches = make_model(), make_batches()
    ref = Reference(model, **ref_kw)
    update = make_update(ref)
    ours = run_ours(model, make_opt(model.named_parameters()), batches)
    for t, ((x, y), sa) in enumerate(zip(batches, COINS, strict=True)):
        expected = ref.step(x, y, sa, update)
        torch.testing.assert_close(ours[t], expected, rtol=0, atol=1e-10, msg=f"{name} step {t}")
    assert (ours[-1] - flat(make_model())).abs().max() > 1e-3  # it moved: a wrong rule shows
    for mine, theirs in zip(model.buffers(), ref.buffers.values(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-10)  # BN stats: first pass only


def test_official_asam_differs_from_scaling_every_tensor() -> None:
    """The weight/bias rule matters: bare tensors (every one a weight) give another trajectory."""
    model, batches = make_model(), make_batches()
    named = run_ours(model, CASES["asam-official"][0](model.named_parameters()), batches)
    model = make_model()
    bare = run_ours(model, CASES["asam-official"][0](model.parameters()), batches)
    assert (named[-1] - bare[-1]).abs().max() > 1e-6


# ----------------------------------------------------------------------------- ESAM's mechanics
def test_esam_chooses_tensors_skips_their_first_pass_gradients_and_scales_by_rho_over_beta() -> (
    None
):
    model, batches = make_model(), make_batches()
    params = list(model.parameters())
    opt = ESAM(model.named_parameters(), torch.optim.SGD, rho=0.3, beta=0.4, choice_seed=11, **SGD)
    had_grad: list[list[bool]] = []
    opt.on_first_pass_end = lambda: had_grad.append([p.grad is not None for p in params])
    gen = torch.Generator().manual_seed(11)
    expected_chosen = [[True] * len(params)]  # the first SA step: every tensor (as the reference)
    for _ in range(sum(COINS) - 1):
        draws = torch.rand(len(params), generator=gen)
        chosen = draws < 0.4
        if not chosen.any():
            chosen[draws.argmin()] = True
        expected_chosen.append(chosen.tolist())
    run_ours(model, opt, batches)
    assert had_grad == expected_chosen  # unchosen tensors had no weight gradient in pass 1
    assert any(not all(c) for c in expected_chosen[1:])  # the test saw skipped tensors
    assert all(p.requires_grad for p in params)  # restored for the second pass and after

    # ε: (ρ/β)·g/‖g_chosen‖ on the chosen tensors, 0 on the others
    x, y = batches[0]
    opt.chosen = [True, False, True, False, True, True]
    opt.zero_grad(set_to_none=True)
    opt.before_first_pass()
    F.cross_entropy(model(x), y).backward()
    before = [p.detach().clone() for p in params]
    grads = [None if p.grad is None else p.grad.clone() for p in params]
    opt.first_step(zero_grad=True)
    eps = [p.detach() - b for p, b in zip(params, before, strict=True)]
    norm = torch.sqrt(sum((g * g).sum() for g in grads if g is not None))
    for e, g, c in zip(eps, grads, opt.chosen, strict=True):
        if c:
            torch.testing.assert_close(e, 0.3 / 0.4 * g / norm, rtol=1e-9, atol=1e-12)
        else:
            assert g is None and torch.equal(e, torch.zeros_like(e))
    assert torch.sqrt(sum((e * e).sum() for e in eps)).item() == pytest.approx(0.3 / 0.4, rel=1e-9)


def test_esam_with_grst_mixing_keeps_every_first_pass_gradient_and_counts_no_saving() -> None:
    from rstsweep.core.config import CellConfig
    from rstsweep.core.passes import expected_sa_extra, ranking_forward

    model, batches = make_model(), make_batches()
    params = list(model.parameters())
    had_grad: list[list[bool]] = []

    class Seen(ESAM):  # what the first pass left, as first_step receives it
        def first_step(self, zero_grad: bool = False) -> None:
            had_grad.append([p.grad is not None for p in params])
            super().first_step(zero_grad)

    opt = Seen(model.named_parameters(), torch.optim.SGD, beta=0.4, alpha=0.5, choice_seed=11)
    run_ours(model, opt, batches)
    assert len(had_grad) == sum(COINS) and all(all(h) for h in had_grad)
    # ½ second pass + the ranking forward per SA step, no skipped weight gradients
    assert opt.take_extra_passes() == pytest.approx(sum(COINS) * (0.5 + ranking_forward()))
    mixed = CellConfig(algorithm="esam", esam_beta=0.4, alpha=0.5)
    assert expected_sa_extra(mixed) == pytest.approx(0.5 + 1 / 3)
    assert expected_sa_extra(mixed.model_copy(update={"alpha": 1.0})) == pytest.approx(
        0.5 + 1 / 3 - 0.6 / 3
    )


def test_esam_state_dict_resumes_the_choice_stream() -> None:
    model, batches = make_model(), make_batches()
    opt = ESAM(model.named_parameters(), torch.optim.SGD, beta=0.5, choice_seed=5, **SGD)
    run_ours(model, opt, batches[:3], COINS[:3])
    state = copy.deepcopy(opt.state_dict())
    run_ours(model, opt, batches[3:], COINS[3:])
    after = opt.chosen
    other = ESAM(model.named_parameters(), torch.optim.SGD, beta=0.5, choice_seed=99, **SGD)
    other.load_state_dict(state)
    assert other.chosen == state["esam"]["chosen"]
    gen = torch.Generator()
    gen.set_state(state["esam"]["generator"])
    # the same number of SA steps in batches[3:] draws the same choices
    n = sum(COINS[3:])
    for _ in range(n):
        draws = torch.rand(len(list(model.parameters())), generator=gen)
        want = draws < 0.5
        if not want.any():
            want[draws.argmin()] = True
    assert after == want.tolist()

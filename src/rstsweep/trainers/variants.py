"""SAM variants: GSAM (surrogate-gap guided, ρ tied to the lr), LookSAM (periodic full SAM,
reuse of the stored orthogonal direction in between) and ESAM (stochastic weight perturbation by
parameter tensor, sharpness-sensitive data selection). All keep `SAM`'s first_step / second_step /
step(closure) contract."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from rstsweep.core.passes import esam_selects, ranking_forward, skipped_weight_grads
from rstsweep.trainers.sam import EPS, SAM, global_norm, orthogonal


# ----------------------------------------------------------------------------- GSAM
class GSAM(SAM):
    """GSAM: u = g_s − γ·g_⊥, where g_⊥ = g − (⟨g,g_s⟩/‖g_s‖²)·g_s is the part of the first-pass
    gradient g orthogonal to g_s = ∇L(θ+ε) (γ = gsam_alpha; γ = 0 is SAM). Descending −g_⊥ lowers
    the surrogate gap without changing the perturbed loss to first order.

    ρ_t (GSAM's ProportionScheduler, its default): ρ_t = ρ_min + (ρ − ρ_min)·lr_t/lr_max, with
    lr_max a group's base lr (its `initial_lr`, as lr schedulers keep it) and lr_min = 0 (the
    cosine schedule's end); `rho_schedule="constant"` keeps ρ_t = ρ (= group["rho"])."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, object]],
        base_optimizer: Callable[..., torch.optim.Optimizer],
        rho: float = 0.05,
        gsam_alpha: float = 0.1,
        rho_schedule: str = "lr",
        rho_min: float = 0.0,
        **kwargs: Any,
    ) -> None:
        if rho_schedule not in ("lr", "constant"):
            raise ValueError(f"rho_schedule: {rho_schedule!r} is not 'lr' or 'constant'")
        super().__init__(params, base_optimizer, rho=rho, **kwargs)
        self.gsam_alpha, self.rho_schedule, self.rho_min = gsam_alpha, rho_schedule, rho_min
        for group in self.param_groups:  # lr_max; LambdaLR sets the same key to the same value
            group.setdefault("initial_lr", group["lr"])

    def _rho(self, group: dict[str, object]) -> float:
        if self.rho_schedule == "constant":
            return group["rho"]
        lr_ratio = group["lr"] / group["initial_lr"]
        return self.rho_min + (group["rho"] - self.rho_min) * lr_ratio

    def _keeps_g(self) -> bool:
        return True

    def _sa_gradient(self, params: list[Tensor], g: list[Tensor], gs: list[Tensor]) -> None:
        torch._foreach_add_(gs, orthogonal(g, gs), alpha=-self.gsam_alpha)


# ----------------------------------------------------------------------------- LookSAM
class LookSAM(SAM):
    """LookSAM: the SA steps are counted; the 1st, (k+1)th, (2k+1)th, ... are full SAM steps
    (u = g_s, two passes) that also store g_v = g_s − (⟨g,g_s⟩/‖g‖²)·g, the part of g_s orthogonal
    to g. The others are one-pass `reuse_step`s: u = g + α_l·(‖g‖/‖g_v‖)·g_v (α_l = looksam_alpha).
    `needs_second_pass()` tells the loop which one is next. GNR's `alpha` mixes u with g as in
    SAM.

    `replace_base_steps=True` is AE-LookSAM (Jiang et al., ICLR 2023): the coin or policy alone
    picks the full steps (every SA step is full), and a step it leaves to the base optimizer is
    the reuse step once a g_v is stored (a plain base step before)."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, object]],
        base_optimizer: Callable[..., torch.optim.Optimizer],
        rho: float = 0.05,
        k: int = 5,
        looksam_alpha: float = 0.7,
        replace_base_steps: bool = False,
        **kwargs: Any,
    ) -> None:
        if k < 1:
            raise ValueError(f"k: {k} must be >= 1")
        super().__init__(params, base_optimizer, rho=rho, **kwargs)
        self.k, self.looksam_alpha = k, looksam_alpha
        self.replace_base_steps = replace_base_steps  # (`adaptive` is ASAM's switch)
        self.sa_steps = 0  # SA steps taken so far (full and reuse)

    def needs_second_pass(self) -> bool:
        return self.replace_base_steps or self.sa_steps % self.k == 0 or not self._has_g_v()

    def _has_g_v(self) -> bool:
        return any("g_v" in self.state[p] for p in self._all_params())

    def _keeps_g(self) -> bool:
        return True

    def _sa_gradient(self, params: list[Tensor], g: list[Tensor], gs: list[Tensor]) -> None:
        for p, g_v in zip(params, orthogonal(gs, g), strict=True):
            self.state[p]["g_v"] = g_v

    def second_step(self, zero_grad: bool = False) -> None:
        super().second_step(zero_grad)
        self.sa_steps += 1

    def reuse_step(self, zero_grad: bool = False) -> None:
        """One-pass SA step (periodic LookSAM between its full steps): `_reuse`."""
        if self.needs_second_pass() or self._perturbed:
            raise RuntimeError("LookSAM.reuse_step called when a full SAM step is due")
        self._reuse(zero_grad)

    def base_step(self, zero_grad: bool = False) -> None:
        """A base step; AE-LookSAM (`replace_base_steps`) reuses the stored g_v, if any."""
        if self.replace_base_steps and self._has_g_v() and not self._perturbed:
            self._reuse(zero_grad)
        else:
            super().base_step(zero_grad)

    @torch.no_grad()
    def _reuse(self, zero_grad: bool) -> None:
        """One pass on the current gradient g, mixed as a full step is:
        (1−α)·g + α·u = g + α·α_l·(‖g‖/‖g_v‖)·g_v with u = g + α_l·(‖g‖/‖g_v‖)·g_v, or
        (1−α)·g/‖g‖ + α·u under `norm_perturbations`; then clip, base step."""
        self._add_l2(self._params_with_grad())
        params = [p for p in self._params_with_grad() if "g_v" in self.state[p]]
        grads = [p.grad for p in params]
        g_v = [self.state[p]["g_v"] for p in params]
        norm_g = global_norm(grads)
        coef = self.alpha * self.looksam_alpha * norm_g / (global_norm(g_v) + EPS)
        if self.alpha != 1.0 and self.norm_perturbations:  # g·(α + (1−α)/‖g‖) first
            torch._foreach_mul_(grads, self.alpha + (1.0 - self.alpha) / (norm_g + EPS))
        torch._foreach_addcmul_(grads, g_v, [coef] * len(g_v))  # in place, no temporary
        self.sa_steps += 1
        self._base_update(zero_grad)

    def state_dict(self) -> dict[str, object]:
        state = super().state_dict()
        g_v = [self.state[p].get("g_v") for p in self._all_params()]
        state["looksam"] = {
            "sa_steps": self.sa_steps,
            "g_v": [None if v is None else v.clone() for v in g_v],
        }
        return state

    def load_state_dict(self, state_dict: dict[str, object]) -> None:
        super().load_state_dict(state_dict)
        self.sa_steps = state_dict["looksam"]["sa_steps"]
        for p, g_v in zip(self._all_params(), state_dict["looksam"]["g_v"], strict=True):
            self.state[p].pop("g_v", None)
            if g_v is not None:
                self.state[p]["g_v"] = g_v.to(device=p.device, dtype=p.dtype, copy=True)


# ----------------------------------------------------------------------------- ESAM
class ESAM(SAM):
    """ESAM (Du et al., 2022, "Efficient Sharpness-aware Minimization"; dydjw9/Efficient_SAM).

    Stochastic Weight Perturbation: each parameter tensor is chosen with probability β (`beta`)
    for the next SA step, drawn after every SA step (all tensors on the first, as the reference
    code). `before_first_pass` turns requires_grad off for the unchosen tensors, so the first
    backward skips their weight gradients (ESAM's saving, counted as such); `first_step` turns it
    back on and perturbs the chosen ones by ε = (ρ/β)·g/‖g_chosen‖ (the norm over the chosen
    tensors' gradients only). The second pass computes every gradient. If no tensor is drawn,
    the one with the smallest draw is chosen (a backward needs at least one leaf).
    The draws come from a CPU generator seeded with `choice_seed` (the choice is needed on the host
    to set requires_grad; no device sync), saved in state_dict.

    G-RST mixing (`alpha` ≠ 1) forms (1−α)·g + α·g_s on every tensor, so it needs the first-pass
    gradient of every tensor: the first pass then skips no weight gradient (nor counts a saving),
    and the unchosen tensors' g is kept beside the chosen ones' (they are still not perturbed).

    Sharpness-Sensitive Data Selection: after `first_step`, a no-grad forward at θ+ε ranks the
    samples by l(θ+ε) − l(θ) and the second pass runs on the ⌊γ·B⌋ (at least 1) with the largest
    increase, γ = `sample_fraction` (the reference keeps those strictly above the ⌊γ·B⌋-th largest
    increase, one sample fewer without ties). From γ = 0.99, as in the reference, and wherever
    ⌊γ·B⌋ ≥ B, every sample is kept and nothing is ranked (the reference still runs the ranking
    forward there, and lets it update BatchNorm's running statistics).
    """

    wants_sample_losses = True

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, object]],
        base_optimizer: Callable[..., torch.optim.Optimizer],
        beta: float = 0.5,
        sample_fraction: float = 0.5,
        choice_seed: int = 0,
        **kwargs: Any,
    ) -> None:
        if not 0 < beta <= 1:
            raise ValueError(f"beta: {beta} is not in (0, 1]")
        if not 0 < sample_fraction <= 1:
            raise ValueError(f"sample_fraction: {sample_fraction} is not in (0, 1]")
        super().__init__(params, base_optimizer, **kwargs)
        self.beta, self.sample_fraction = beta, sample_fraction
        self._choice_generator = torch.Generator().manual_seed(choice_seed)
        self.chosen: list[bool] | None = None  # for the next SA step; None: every tensor
        self._frozen: list[Tensor] = []  # requires_grad turned off by before_first_pass
        self._unperturbed: list[Tensor] = []  # G-RST: unchosen tensors whose g is kept

    def _rho(self, group: dict[str, object]) -> float:
        return group["rho"] / self.beta

    def before_first_pass(self) -> None:
        params = self._all_params()
        if self.chosen is None or self._frozen or self.alpha != 1.0:  # G-RST needs every g
            return
        skipped = 0
        for p, chosen in zip(params, self.chosen, strict=True):
            if not chosen and p.requires_grad:
                p.requires_grad_(False)
                self._frozen.append(p)
                skipped += p.numel()
        self.extra_passes += skipped_weight_grads(skipped / sum(p.numel() for p in params))

    def abandon_first_pass(self) -> None:
        for p in self._frozen:
            p.requires_grad_(True)
        self._frozen = []

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        self.abandon_first_pass()  # the second pass computes every gradient
        if self.chosen is not None and self.alpha != 1.0:
            # G-RST: keep the unchosen tensors' g (with the L2 term, as first_step adds it to
            # the chosen), then hide their gradient so that only the chosen ones are perturbed
            unchosen = [
                p
                for p, c in zip(self._all_params(), self.chosen, strict=True)
                if not c and p.grad is not None
            ]
            if unchosen:
                self._add_l2(unchosen)
                self._stash("g", unchosen, [p.grad for p in unchosen])
            for p in unchosen:
                p.grad = None
            self._unperturbed = unchosen
        super().first_step(zero_grad)

    def _mixed(self, perturbed: list[Tensor]) -> list[Tensor]:
        unperturbed, self._unperturbed = self._unperturbed, []
        return perturbed + unperturbed

    def undo_first_step(self) -> None:
        self._unperturbed = []
        super().undo_first_step()

    def second_step(self, zero_grad: bool = False) -> None:
        super().second_step(zero_grad)
        self.draw_choice()

    def draw_choice(self) -> None:
        """SWP's draw for the next SA step: each tensor chosen with probability β (at least one)."""
        draws = torch.rand(len(self._all_params()), generator=self._choice_generator)
        chosen = draws < self.beta
        if not chosen.any():
            chosen[draws.argmin()] = True
        self.chosen = chosen.tolist()

    def second_pass_batch(
        self,
        sample_losses: Callable[[Tensor, Tensor], Tensor],
        x: Tensor,
        y: Tensor,
        loss_before: Tensor,
    ) -> tuple[Tensor, Tensor]:
        k = max(1, int(self.sample_fraction * x.shape[0]))
        if k >= x.shape[0] or not esam_selects(self.sample_fraction):
            self._second_fraction = 1.0
            return x, y
        loss_after = sample_losses(x, y)
        self.extra_passes += ranking_forward()
        self._second_fraction = k / x.shape[0]
        # topk on the device: the subset is chosen without a host sync.
        chosen = torch.topk(loss_after.float() - loss_before.float(), k, sorted=False).indices
        return x[chosen], y[chosen]

    def state_dict(self) -> dict[str, object]:
        if self._frozen:
            raise RuntimeError("state_dict between before_first_pass and first_step")
        state = super().state_dict()
        state["esam"] = {"generator": self._choice_generator.get_state(), "chosen": self.chosen}
        return state

    def load_state_dict(self, state_dict: dict[str, object]) -> None:
        super().load_state_dict(state_dict)
        self._choice_generator.set_state(state_dict["esam"]["generator"])
        self.chosen = state_dict["esam"]["chosen"]

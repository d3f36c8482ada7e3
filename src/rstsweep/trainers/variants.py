"""SAM variants that change the update, not the perturbation: GSAM (surrogate-gap guided) and
LookSAM (periodic full SAM, reuse of the stored orthogonal direction in between), and ESAM's
sharpness-sensitive data selection. All keep `SAM`'s first_step / second_step / step(closure)
contract."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from rstsweep.trainers.sam import EPS, SAM, global_norm, orthogonal


# ----------------------------------------------------------------------------- GSAM
class GSAM(SAM):
    """GSAM: u = g_s − γ·g_⊥, where g_⊥ = g − (⟨g,g_s⟩/‖g_s‖²)·g_s is the part of the first-pass
    gradient g orthogonal to g_s = ∇L(θ+ε) (γ = gsam_alpha; γ = 0 is SAM). Descending −g_⊥ lowers
    the surrogate gap without changing the perturbed loss to first order. (The paper's ρ schedule
    tied to the lr is not included: ρ is constant unless the caller changes group["rho"].)"""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        base_optimizer: Callable[..., torch.optim.Optimizer],
        rho: float = 0.05,
        gsam_alpha: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, base_optimizer, rho=rho, **kwargs)
        self.gsam_alpha = gsam_alpha

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
    SAM."""

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        base_optimizer: Callable[..., torch.optim.Optimizer],
        rho: float = 0.05,
        k: int = 5,
        looksam_alpha: float = 0.7,
        **kwargs: Any,
    ) -> None:
        if k < 1:
            raise ValueError(f"k: {k} must be >= 1")
        super().__init__(params, base_optimizer, rho=rho, **kwargs)
        self.k, self.looksam_alpha = k, looksam_alpha
        self.sa_steps = 0  # SA steps taken so far (full and reuse)

    def needs_second_pass(self) -> bool:
        has_g_v = any("g_v" in self.state[p] for p in self._all_params())
        return self.sa_steps % self.k == 0 or not has_g_v

    def _keeps_g(self) -> bool:
        return True

    def _sa_gradient(self, params: list[Tensor], g: list[Tensor], gs: list[Tensor]) -> None:
        for p, g_v in zip(params, orthogonal(gs, g), strict=True):
            self.state[p]["g_v"] = g_v

    def second_step(self, zero_grad: bool = False) -> None:
        super().second_step(zero_grad)
        self.sa_steps += 1

    @torch.no_grad()
    def reuse_step(self, zero_grad: bool = False) -> None:
        """One-pass SA step on the current gradient g: g + α·α_l·(‖g‖/‖g_v‖)·g_v, clip, base step"""
        if self.needs_second_pass() or self._perturbed:
            raise RuntimeError("LookSAM.reuse_step called when a full SAM step is due")
        params = [p for p in self._params_with_grad() if "g_v" in self.state[p]]
        grads = [p.grad for p in params]
        g_v = [self.state[p]["g_v"] for p in params]
        coef = self.alpha * self.looksam_alpha * global_norm(grads) / (global_norm(g_v) + EPS)
        torch._foreach_addcmul_(grads, g_v, [coef] * len(g_v))  # in place, no temporary
        self.sa_steps += 1
        self._base_update(zero_grad)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        g_v = [self.state[p].get("g_v") for p in self._all_params()]
        state["looksam"] = {
            "sa_steps": self.sa_steps,
            "g_v": [None if v is None else v.clone() for v in g_v],
        }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.sa_steps = state_dict["looksam"]["sa_steps"]
        for p, g_v in zip(self._all_params(), state_dict["looksam"]["g_v"], strict=True):
            self.state[p].pop("g_v", None)
            if g_v is not None:
                self.state[p]["g_v"] = g_v.to(device=p.device, dtype=p.dtype, copy=True)


# ----------------------------------------------------------------------------- ESAM's SDS
class ESAM(SAM):
    """ESAM's sharpness-sensitive data selection (Du et al., 2022) on top of SAM's perturbation:
    after `first_step`, a no-grad forward at θ+ε ranks the samples by loss increase
    l(θ+ε) − l(θ), and the second pass runs only on the ⌊γ·B⌋ (at least 1) samples with the
    largest increase, γ = `sample_fraction`."""

    wants_sample_losses = True

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, Any]],
        base_optimizer: Callable[..., torch.optim.Optimizer],
        sample_fraction: float = 0.5,
        **kwargs: Any,
    ) -> None:
        if not 0 < sample_fraction <= 1:
            raise ValueError(f"sample_fraction: {sample_fraction} is not in (0, 1]")
        super().__init__(params, base_optimizer, **kwargs)
        self.sample_fraction = sample_fraction

    def second_pass_batch(
        self,
        sample_losses: Callable[[Tensor, Tensor], Tensor],
        x: Tensor,
        y: Tensor,
        loss_before: Tensor,
    ) -> tuple[Tensor, Tensor]:
        k = max(1, int(self.sample_fraction * x.shape[0]))
        if k >= x.shape[0]:
            return x, y
        loss_after = sample_losses(x, y)
        # topk on the device: the subset is chosen without a host sync.
        chosen = torch.topk(loss_after.float() - loss_before.float(), k, sorted=False).indices
        return x[chosen], y[chosen]

"""The sharpness-aware optimizer family: SAM, ASAM, GNR(α), GSAM, LookSAM and weight masking
(GSAM, LookSAM and ESAM's data selection are in `variants.py`).

Notation: θ weights, g = ∇L(θ) (first pass), ε the perturbation, g_s = ∇L(θ+ε) (second pass).

    SAM       ε = ρ·g/‖g‖, update gradient g_s                   (Foret et al. 2021)
    ASAM      ε = ρ·T²g/‖Tg‖, adaptive=True                      (Kwon et al. 2021)
              official (SamsungLabs/ASAM): T = |θ| + η on tensors whose parameter name contains
              "weight" (conv, linear and BatchNorm weights), T = 1 on the others (biases); the
              names come from `named_parameters()`; given bare tensors every one is a weight.
              rst (the RST authors' `asam_vector`): T = |θ| on every tensor, no η.
    mask      g is replaced by g⊙m in ε: ε = ρ·(g⊙m)/‖g⊙m‖ (with ASAM: ρ·T²(g⊙m)/‖T(g⊙m)‖);
              m ~ Bernoulli(mask_fraction) per entry, or the top mask_fraction entries of g² (an
              SSAM-style Fisher mask, see `_mask`). ESAM's tensor-level SWP is `variants.ESAM`.
    GNR(α)    update gradient (1−α)·g + α·u, u the variant's SA gradient (g_s for SAM); α = γ/ρ.
              α = 1 is the variant itself (plain SAM then keeps no copy of g), α = 0 gives g.
              norm_perturbations (the RST authors' default): (1−α)·g/‖g‖ + α·u.
    GSAM(γ)   u = g_s − γ·g_⊥, g_⊥ = g − (⟨g,g_s⟩/‖g_s‖²)·g_s    (Zhuang et al. 2022)
    LookSAM   u = g_s on every k-th SA step (storing g_v = g_s − (⟨g,g_s⟩/‖g‖²)·g), and
              u = g + α_l·(‖g‖/‖g_v‖)·g_v on the others, which need one pass only
                                                                 (Liu et al. 2022)

The final update gradient is clipped to `max_grad_norm` (global norm), then to `base_clip` if set
(the authors' second clip inside their base optimizer), and handed to the base optimizer, which
alone applies weight decay and momentum. With `l2` > 0 weight decay is instead an L2 term
(l2/2)·‖θ‖² of the loss, as in the authors' code: l2·θ is added to every gradient where it is
taken (at θ+ε in the second pass), so it enters ε and is clipped. Every norm and inner product is
global over all parameters with a gradient, accumulated in at least fp32, with eps 1e-12.

Usage per step (the first pass `loss.backward()` has been done by the caller, as in davda54/sam):

    opt.first_step(zero_grad=True)                          # θ -> θ+ε
    with disable_running_stats(model): loss_fn(model(x), y).backward()
    opt.second_step(zero_grad=True)                         # θ restored, base step with the update
    # or opt.step(closure) doing the same; opt.base_step() is a genuine one-pass base step,
    # opt.reuse_step() LookSAM's one-pass step when opt.needs_second_pass() is False.

`param_groups` are shared with the base optimizer, so lr schedulers work on the SAM object; `rho` is
a per-group option. `state_dict()` covers the base optimizer, the mask generator and LookSAM's
state, so a resumed run is bit-identical.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from rstsweep.core.passes import second_pass
from rstsweep.trainers.batchnorm import disable_running_stats  # noqa: F401  (re-exported)
from rstsweep.trainers.vecmath import (  # noqa: F401  (re-exported: the variants use them)
    EPS,
    acc_dtype,
    clip_,
    global_dot,
    global_norm,
    orthogonal,
)


# ----------------------------------------------------------------------------- SAM (+ASAM/GNR/mask)
class SAM(torch.optim.Optimizer):
    """SAM with the ASAM (`adaptive`), GNR (`alpha`) and weight-mask (`mask_fraction`) options.

    ε = ρ·T²h/‖T h‖ with h = g⊙m (m = 1 without a mask) and T = diag(|θ| + eta) if adaptive else I.
    Update gradient (1−α)·g + α·∇L(θ+ε), clipped to max_grad_norm, then the base optimizer's step.
    With rho = 0 this still costs two passes: it is NOT the base optimizer (use `base_step`).
    """

    def __init__(
        self,
        params: Iterable[Tensor] | Iterable[dict[str, object]],
        base_optimizer: Callable[..., torch.optim.Optimizer],
        rho: float = 0.05,
        adaptive: bool = False,
        alpha: float = 1.0,
        eta: float = 0.01,
        mask_fraction: float = 1.0,
        mask_kind: str = "random",
        max_grad_norm: float | None = None,
        mask_seed: int = 0,
        adaptive_variant: str = "official",
        l2: float = 0.0,
        norm_perturbations: bool = False,
        base_clip: float | None = None,
        **base_kwargs: Any,
    ) -> None:
        if rho < 0:
            raise ValueError(f"rho: {rho} must be >= 0")
        if eta <= 0:
            raise ValueError(f"eta: {eta} must be > 0")
        if not 0 < mask_fraction <= 1:
            raise ValueError(f"mask_fraction: {mask_fraction} is not in (0, 1]")
        if mask_kind not in ("random", "fisher"):
            raise ValueError(f"mask_kind: {mask_kind!r} is not 'random' or 'fisher'")
        if max_grad_norm is not None and max_grad_norm <= 0:
            raise ValueError(f"max_grad_norm: {max_grad_norm} must be > 0 or None")
        if adaptive_variant not in ("official", "rst"):
            raise ValueError(f"adaptive_variant: {adaptive_variant!r} is not 'official' or 'rst'")
        params, self._names = _split_names(params)
        super().__init__(params, dict(rho=rho, **base_kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **base_kwargs)
        # one set of groups, so lr schedulers and group['rho'] edits reach the base optimizer
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)
        self.adaptive, self.eta, self.alpha = adaptive, eta, alpha
        self.mask_fraction, self.mask_kind, self.mask_seed = mask_fraction, mask_kind, mask_seed
        self.max_grad_norm, self.base_clip = max_grad_norm, base_clip
        self.adaptive_variant = adaptive_variant  # ASAM's T: "official" or "rst"
        self.l2 = l2  # weight decay as an L2 term of the loss (the authors'), 0: off
        self.norm_perturbations = norm_perturbations  # GNR mixes g/‖g‖ (the authors')
        # Pass accounting (rstsweep.core.passes): extra pass units run since the last
        # take_extra_passes(), counted on the host from what each step ran (no device sync).
        self.extra_passes = 0.0
        self._second_fraction = 1.0  # batch fraction of the pending second pass
        self.on_first_pass_end: Callable[[], None] | None = None  # e.g. a step timer's mark
        self._generator: torch.Generator | None = None  # random masks; made on the grads' device
        self._perturbed: list[Tensor] = []  # params moved to θ+ε by first_step, not yet restored

    # Hooks of per-algorithm behaviour (ESAM's data selection overrides them).
    wants_sample_losses = False  # whether the first pass keeps the per-sample losses

    def before_first_pass(self) -> None:
        """Called before the first forward of a sharpness-aware step (ESAM picks the tensors whose
        weight gradients the first backward computes)."""

    def abandon_first_pass(self) -> None:
        """The SA step ends after its first pass (an fp16 overflow): undo what
        `before_first_pass` changed."""

    def second_pass_batch(
        self, sample_losses: Callable[[Tensor, Tensor], Tensor], x: Tensor, y: Tensor, _: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The samples of the second pass (at θ+ε): the whole batch for SAM."""
        self._second_fraction = 1.0
        return x, y

    def take_extra_passes(self) -> float:
        """The extra pass units counted since the last call (and reset the count)."""
        extra, self.extra_passes = self.extra_passes, 0.0
        return extra

    # --- the steps the trainer calls -------------------------------------------------------------
    def needs_second_pass(self) -> bool:
        """Whether the next sharpness-aware step is first_step/second_step (False: reuse_step)."""
        return True

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """θ -> θ+ε from the current gradients g (remembered when the update needs them)."""
        if self._perturbed:
            raise RuntimeError("first_step called twice without second_step")
        if self.on_first_pass_end is not None:
            self.on_first_pass_end()
        params = self._params_with_grad()
        self._add_l2(params)
        grads = [p.grad for p in params]
        if self._keeps_g():
            self._stash("g", params, grads)
        self._stash("old_p", params, params)  # restored bit-exactly by second_step
        self._perturb(params, grads)
        self._perturbed = params
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore θ, form the update gradient from g and g_s = current .grad, clip, base step."""
        if not self._perturbed:
            raise RuntimeError("second_step called without first_step")
        params, self._perturbed = self._perturbed, []
        if any(p.grad is None for p in params):
            raise RuntimeError("second_step: a parameter perturbed by first_step has no gradient")
        self._add_l2(self._params_with_grad())  # at θ+ε: the L2 term's gradient where it is taken
        torch._foreach_copy_(params, [self.state[p]["old_p"] for p in params])
        if self._keeps_g():
            params = self._mixed(params)  # ESAM: also the tensors it did not perturb
            grads, g = [p.grad for p in params], [self.state[p]["g"] for p in params]
            self._sa_gradient(params, g, grads)  # grads <- the variant's SA gradient u, in place
            if self.alpha != 1.0:  # GNR: (1−α)·g + α·u, or (1−α)·g/‖g‖ + α·u
                torch._foreach_mul_(grads, self.alpha)
                if self.norm_perturbations:
                    weight = (1.0 - self.alpha) / (global_norm(g) + EPS)
                    torch._foreach_add_(grads, torch._foreach_mul(g, weight.to(grads[0].device)))
                else:
                    torch._foreach_add_(grads, g, alpha=1.0 - self.alpha)
        self.extra_passes += second_pass(self._second_fraction)
        self._second_fraction = 1.0
        self._base_update(zero_grad)

    @torch.no_grad()
    def undo_first_step(self) -> None:
        """θ+ε -> θ (bit-exact) without an update: the step is abandoned (an fp16 overflow)."""
        params, self._perturbed = self._perturbed, []
        if params:
            torch._foreach_copy_(params, [self.state[p]["old_p"] for p in params])
        self.zero_grad(set_to_none=True)

    @torch.no_grad()
    def base_step(self, zero_grad: bool = False) -> None:
        """The genuine one-pass branch: clip the current gradient, base optimizer step."""
        if self._perturbed:
            raise RuntimeError("base_step called between first_step and second_step")
        self._add_l2(self._params_with_grad())
        self._base_update(zero_grad)

    def reuse_step(self, zero_grad: bool = False) -> None:
        """LookSAM's one-pass SA step; plain SAM always needs its second pass."""
        raise RuntimeError(f"{type(self).__name__} has no one-pass SA step (needs_second_pass())")

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> None:  # type: ignore[override]
        """A whole SA step. The caller has done the first pass; `closure` runs a full forward-
        backward pass at θ+ε (freeze BN running stats inside it: see disable_running_stats)."""
        if not self.needs_second_pass():
            self.reuse_step()
            return
        if closure is None:
            raise ValueError("SAM.step needs a closure doing a full forward-backward pass")
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            closure()
        self.second_step()

    # --- the pieces subclasses change ------------------------------------------------------------
    def _keeps_g(self) -> bool:
        """Whether second_step needs the first-pass gradient g (not for plain SAM: saves memory)."""
        return self.alpha != 1.0

    def _sa_gradient(self, params: list[Tensor], g: list[Tensor], gs: list[Tensor]) -> None:
        """Turn gs = ∇L(θ+ε) into the variant's SA gradient u, in place (SAM: u = g_s)."""

    def _mixed(self, perturbed: list[Tensor]) -> list[Tensor]:
        """The tensors whose update is formed from g and g_s (every one that has a stored g;
        SAM perturbs all of them)."""
        return perturbed

    def _perturb(self, params: list[Tensor], grads: list[Tensor]) -> None:
        """θ += ε, ε = ρ·T²h/‖T h‖ with h = g⊙m, T = |θ| + eta (adaptive) or I; ρ is per group.
        `params` are those with a gradient, in param_groups order (as `_params_with_grad`)."""
        mask = self._mask(grads)
        h = grads if mask is None else torch._foreach_mul(grads, mask)
        t = self._scaling(params) if self.adaptive else None
        th = h if t is None else torch._foreach_mul(h, t)
        scale = 1.0 / (global_norm(th) + EPS)
        factors = []  # ρ/‖T h‖ per param, as 0-dim tensors (no host sync)
        for group in self.param_groups:
            n = sum(p.grad is not None for p in group["params"])
            factors += [scale * self._rho(group)] * n
        if t is not None:
            torch._foreach_mul_(t, factors)
            factors = t
        # in place, without a temporary ε (large allocations cost more than the arithmetic on CPU)
        torch._foreach_addcmul_(params, th, factors)

    def _rho(self, group: dict[str, object]) -> float:
        """The radius of `group` at this step (GSAM schedules it with the lr)."""
        return group["rho"]

    def _scaling(self, params: list[Tensor]) -> list[Tensor]:
        """ASAM's T per parameter: |θ| + η for weights, 1 for biases (official), |θ| (rst)."""
        if self.adaptive_variant == "rst":
            return torch._foreach_abs(params)
        names = [self._names.get(id(p), "weight") for p in params]
        return [
            p.abs().add_(self.eta) if "weight" in n else torch.ones_like(p)
            for p, n in zip(params, names, strict=True)
        ]

    def _add_l2(self, params: list[Tensor]) -> None:
        """grad += l2·θ (the gradient of an L2 term (l2/2)·‖θ‖² in the loss), if l2 > 0."""
        if self.l2 > 0 and params:
            torch._foreach_add_([p.grad for p in params], params, alpha=self.l2)

    def _mask(self, grads: list[Tensor]) -> list[Tensor] | None:
        """The 0/1 weight mask m (grads' dtype), or None when every entry is perturbed.

        random: a fresh Bernoulli(mask_fraction) draw per entry at every first_step (ESAM's SWP),
        from a generator owned by the optimizer (seeded with mask_seed, saved in state_dict); an
        entry-level random mask, not ESAM's tensor-level choice.
        fisher: the top mask_fraction of all entries by g² of the *current* minibatch gradient.
        SSAM-F instead accumulates the empirical Fisher over many batches and refreshes the mask
        every few hundred steps; the per-step g² is the cheap, stateless simplification used here.
        """
        if self.mask_fraction >= 1.0 or not grads:
            return None
        if self.mask_kind == "random":
            gen = self._mask_generator(grads[0].device)
            return [
                (torch.rand(g.shape, generator=gen, device=gen.device) < self.mask_fraction).to(
                    device=g.device, dtype=g.dtype
                )
                for g in grads
            ]
        sq = torch.cat([g.flatten().to(acc_dtype(grads)).square() for g in grads])
        keep = torch.zeros_like(sq, dtype=torch.bool)
        k = max(1, round(self.mask_fraction * sq.numel()))
        keep[torch.topk(sq, k, sorted=False).indices] = True
        parts = keep.split([g.numel() for g in grads])
        return [m.view_as(g).to(g.dtype) for m, g in zip(parts, grads, strict=True)]

    # --- internals -------------------------------------------------------------------------------
    def _params_with_grad(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"] if p.grad is not None]

    def _stash(self, key: str, params: list[Tensor], values: list[Tensor]) -> None:
        """state[p][key] <- a copy of value, reusing the buffer kept from the previous step."""
        bufs = [self.state[p].get(key) for p in params]
        if all(b is not None and b.shape == v.shape for b, v in zip(bufs, values, strict=True)):
            torch._foreach_copy_(bufs, values)
            return
        for p, v in zip(params, values, strict=True):
            self.state[p][key] = v.detach().clone()

    def _all_params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def _mask_generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None:
            self._generator = torch.Generator(device=device).manual_seed(self.mask_seed)
        return self._generator

    def _base_update(self, zero_grad: bool) -> None:
        """Clip the current .grad (global norm) and take the base optimizer's step."""
        if self.max_grad_norm is not None:
            clip_([p.grad for p in self._params_with_grad()], self.max_grad_norm)
        if self.base_clip is not None:  # the authors' second clip, inside their base optimizer
            clip_([p.grad for p in self._params_with_grad()], self.base_clip)
        self.base_optimizer.step()
        # lr schedulers warn unless the optimizer they wrap (this one) had its `step` called;
        # every update goes through here, so mark it.
        self._opt_called = True
        if zero_grad:
            self.zero_grad()

    # --- checkpoints -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, object]:
        """Base optimizer state (momentum etc., param groups with lr/rho) and the mask RNG state."""
        if self._perturbed:
            raise RuntimeError("state_dict between first_step and second_step")
        generator = None if self._generator is None else self._generator.get_state()
        return {"base": self.base_optimizer.state_dict(), "mask_generator": generator}

    def load_state_dict(self, state_dict: dict[str, object]) -> None:
        self.base_optimizer.load_state_dict(state_dict["base"])
        # the base optimizer builds new group dicts on load: share them again
        self.param_groups = self.base_optimizer.param_groups
        self._generator = None
        if state_dict.get("mask_generator") is not None:
            device = self._all_params()[0].device
            self._mask_generator(device).set_state(state_dict["mask_generator"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.base_optimizer!r})"


def _split_names(
    params: Iterable[Tensor | tuple[str, Tensor] | dict[str, object]],
) -> tuple[list[Tensor] | list[dict[str, object]], dict[int, str]]:
    """Accept tensors, param-group dicts or `named_parameters()` pairs (also inside groups);
    return the davda54-style params and a name per tensor (for ASAM's weight/bias rule)."""
    names: dict[int, str] = {}  # id(tensor) -> name

    def strip(items: Iterable[Tensor | tuple[str, Tensor]]) -> list[Tensor]:
        out = []
        for item in items:
            if isinstance(item, tuple):
                names[id(item[1])] = item[0]
                item = item[1]
            out.append(item)
        return out

    items = list(params)
    if items and isinstance(items[0], dict):
        return [{**g, "params": strip(g["params"])} for g in items], names
    return strip(items), names


def kept_gradient(optimizer: SAM) -> list[Tensor]:
    """The first-pass gradient g a pending SA step keeps for its update (GNR's and G-RST's mix,
    LookSAM's g_v), one tensor per perturbed parameter; [] when the update does not use g."""
    if not optimizer._keeps_g():
        return []
    return [optimizer.state[p]["g"] for p in optimizer._perturbed]

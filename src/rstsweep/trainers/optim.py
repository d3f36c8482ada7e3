"""From a CellConfig to the optimizer and the per-step lr schedule the RST loop drives.

`build_optimizer` always returns a SAM-family object: the loop takes `base_step()` on X_t = 0 and
the sharpness-aware branch on X_t = 1 (for algorithm `sgd` the schedule is constant(0), so that
branch is never used). `alpha` (GNR's γ/ρ) applies to every sharpness-aware algorithm: `gnr` is
`sam` with alpha, and asam/gsam/looksam/esam/ssam with alpha ≠ 1 are their G-RST versions.
Each algorithm's builder is named by the algorithm registry (`rstsweep.core.algorithms`).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR

from rstsweep.core.algorithms import get_algorithm
from rstsweep.core.config import CellConfig
from rstsweep.errors import RstError
from rstsweep.trainers.sam import SAM
from rstsweep.trainers.variants import ESAM, GSAM, LookSAM

STEP_MILESTONES = (0.3, 0.6, 0.8)  # fractions of training where the `step` schedule multiplies lr
STEP_FACTOR = 0.2  # by this (the WRN/SAM CIFAR recipe: 60/120/160 of 200 epochs)

# What the builders take: `model.named_parameters()` (the trainer's) or bare tensors.
Params = Iterable[tuple[str, Tensor]] | Iterable[Tensor]


def _base_optimizer(config: CellConfig) -> tuple[Callable[..., torch.optim.Optimizer], dict]:
    """The base optimizer class and its kwargs (weight decay applied by it, once, unless it is an
    L2 term of the loss: `weight_decay_in_loss`)."""
    weight_decay = 0.0 if config.weight_decay_in_loss else config.weight_decay
    if config.optimizer == "sgd":
        if config.nesterov and config.momentum == 0:
            raise RstError("nesterov: Nesterov momentum needs momentum > 0")
        kwargs = dict(
            lr=config.lr,
            momentum=config.momentum,
            nesterov=config.nesterov,
            weight_decay=weight_decay,
        )
        return torch.optim.SGD, kwargs
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls, dict(lr=config.lr, weight_decay=weight_decay)


def build_optimizer(params: Params, config: CellConfig) -> SAM:
    """The SAM-family optimizer of `config.algorithm` (through the algorithm registry) over the
    base optimizer `config.optimizer`. The trainer passes `model.named_parameters()` (SAM and its
    subclasses take names or bare tensors; ASAM's official rule needs the names)."""
    module, _, function = get_algorithm(config.algorithm).builder.partition(":")
    builder = getattr(importlib.import_module(module), function)
    return builder(params, config)


def _common(config: CellConfig) -> tuple[Callable[..., torch.optim.Optimizer], dict]:
    base, kwargs = _base_optimizer(config)
    kwargs.update(
        rho=config.rho,
        alpha=config.alpha,
        max_grad_norm=config.grad_clip,
        base_clip=config.base_grad_clip,
        l2=config.weight_decay if config.weight_decay_in_loss else 0.0,
        norm_perturbations=config.norm_perturbations,
    )
    return base, kwargs


def build_sam(params: Params, config: CellConfig) -> SAM:
    """SAM, GNR/G-RST (alpha) and the plain base optimizer (`sgd` never takes the SA branch)."""
    base, kwargs = _common(config)
    return SAM(params, base, **kwargs)


def build_asam(params: Params, config: CellConfig) -> SAM:
    """ASAM: SAM with the adaptive (scale-invariant) perturbation; `params` should be
    `named_parameters()` (the official variant scales weights, not biases)."""
    base, kwargs = _common(config)
    extra = dict(eta=config.asam_eta, adaptive_variant=config.asam_variant)
    return SAM(params, base, adaptive=True, **extra, **kwargs)


def build_gsam(params: Params, config: CellConfig) -> GSAM:
    """GSAM: SAM's update minus gsam_alpha times the orthogonal component of the first gradient."""
    base, kwargs = _common(config)
    rho = dict(rho_schedule=config.gsam_rho_schedule, rho_min=config.gsam_rho_min)
    return GSAM(params, base, gsam_alpha=config.gsam_alpha, **rho, **kwargs)


def build_looksam(params: Params, config: CellConfig) -> LookSAM:
    """LookSAM: a full SAM step every looksam_k-th SA step, the stored direction reused between;
    `looksam_mode: adaptive` is AE-LookSAM (every SA step full, base steps reuse)."""
    base, kwargs = _common(config)
    ae = config.looksam_mode == "adaptive"
    k, alpha_l = config.looksam_k, config.looksam_alpha
    return LookSAM(params, base, k=k, looksam_alpha=alpha_l, replace_base_steps=ae, **kwargs)


def build_masked(params: Params, config: CellConfig) -> SAM:
    """ESAM (tensor-level weight perturbation + data selection) / SSAM-style masking (a per-entry
    mask of mask_kind)."""
    base, kwargs = _common(config)
    if config.algorithm == "esam":
        esam = dict(beta=config.esam_beta, sample_fraction=config.esam_gamma)
        return ESAM(params, base, choice_seed=config.seed, **esam, **kwargs)
    mask = dict(
        mask_fraction=config.mask_fraction, mask_kind=config.mask_kind, mask_seed=config.seed
    )
    return SAM(params, base, **mask, **kwargs)


def lr_factor(step: int, config: CellConfig, steps_per_epoch: int) -> float:
    """The lr multiplier at global step `step` (0-based): linear warmup to 1 over warmup_epochs
    (factor (step+1)/W), then cosine from 1 to 0 over the remaining steps, or ×0.2 at 30/60/80 %
    of all steps (`step`), or 1 (`constant`)."""
    total = config.epochs * steps_per_epoch
    warmup = min(config.warmup_epochs * steps_per_epoch, total)
    if step < warmup:
        return (step + 1) / warmup
    if config.lr_schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
    if config.lr_schedule == "step":
        return STEP_FACTOR ** sum(step >= int(f * total) for f in STEP_MILESTONES)
    return 1.0


def build_lr_scheduler(optimizer: SAM, config: CellConfig, steps_per_epoch: int) -> LambdaLR:
    """A LambdaLR stepped once per training step (SA or base) with `lr_factor`."""
    if steps_per_epoch < 1:
        raise RstError(f"steps_per_epoch: {steps_per_epoch} must be >= 1")
    return LambdaLR(optimizer, lambda step: lr_factor(step, config, steps_per_epoch))

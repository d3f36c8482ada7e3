"""The pass cost model: what one training step costs, in forward-backward pass units.

One unit is one forward plus one backward pass over the whole batch at full size. The backward is
taken to cost twice the forward (it computes two products per layer, the gradient with respect to
the layer's input and the one with respect to its weights, each about as costly as the forward),
so

    forward = 1/3,   backward = 2/3 = input gradients 1/3 + weight gradients 1/3.

A base step costs 1. The *extra* compute of a step is what it runs beyond that:

    full second pass at θ+ε on a fraction f of the batch     + f          (SAM: f = 1)
    LookSAM's reuse step (no second pass)                    + 0
    ESAM's no-grad ranking forward at θ+ε on the full batch  + 1/3
    first-pass weight gradients skipped for a fraction u of
    the parameters (ESAM's unchosen tensors)                 − u/3

u is counted by parameter entries (a weight gradient's cost grows with its tensor's size; for
convolutions it also grows with the feature map, which this model ignores). Vector arithmetic on
the parameters (norms, ε, the orthogonal components) is not counted. The trainer adds these terms
from what each step ran (`realized_extra` = Σ extra / T), the planner takes their expectation over
the algorithm's random choices (`expected_sa_extra`), both from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from rstsweep.core.algorithms import get_algorithm

if TYPE_CHECKING:
    from rstsweep.core.config import CellConfig

FORWARD = 1.0 / 3.0
BACKWARD = 2.0 / 3.0
WEIGHT_GRAD = BACKWARD / 2.0  # the weight-gradient half of a backward pass


def second_pass(fraction: float = 1.0) -> float:
    """A forward-backward pass at θ+ε on `fraction` of the batch."""
    return float(fraction)


def ranking_forward() -> float:
    """ESAM's no-grad forward at θ+ε over the whole batch (ranks the samples)."""
    return FORWARD


def skipped_weight_grads(fraction: float) -> float:
    """The (negative) cost of skipping the first-pass weight gradients of `fraction` of the
    parameters."""
    return -WEIGHT_GRAD * float(fraction)


# ESAM's reference code (dydjw9/Efficient_SAM, `utils/Esam.py`) keeps every sample from γ = 0.99.
ESAM_KEEPS_ALL = 0.99


def esam_selects(gamma: float) -> bool:
    """Whether ESAM's data selection drops samples at this γ (below 0.99, as the reference)."""
    return gamma < ESAM_KEEPS_ALL


def esam_extra(beta: float, gamma: float, ranked: bool = True, skips: bool = True) -> float:
    """Expected extra of one ESAM step: a γ-fraction second pass, the ranking forward (only when
    γ selects a strict subset) and the skipped weight gradients of the 1 − β unchosen share (in
    expectation 1 − β of every tensor's entries, whatever the tensor sizes). G-RST mixing
    (`alpha` ≠ 1) needs every first-pass gradient: `skips=False`, nothing skipped."""
    rank = ranking_forward() if ranked else 0.0
    return second_pass(gamma) + rank + (skipped_weight_grads(1.0 - beta) if skips else 0.0)


def expected_sa_extra(config: CellConfig) -> float:
    """Expected extra passes of one sharpness-aware step of `config.algorithm` (a CellConfig):
    LookSAM runs its second pass on every k-th SA step, ESAM as `esam_extra`, the others as their
    registry entry (`AlgorithmSpec.extra_passes`). The planner and status use this."""
    if config.algorithm == "looksam":  # AE-LookSAM (adaptive): every SA step is a full one
        return second_pass() / (1 if config.looksam_mode == "adaptive" else config.looksam_k)
    if config.algorithm == "esam":
        ranked, skips = esam_selects(config.esam_gamma), config.alpha == 1.0
        gamma = config.esam_gamma if ranked else 1.0
        return esam_extra(config.esam_beta, gamma, ranked, skips)
    return get_algorithm(config.algorithm).extra_passes


# ----------------------------------------------------------------------------- measured time
# The pass units above are device-independent FLOP counts (the paper's Δη for SAM/SGD mixing).
# What a step costs on a given device and setting differs: a no-grad forward is not ⅓ of a pass,
# a half batch is not half the time on a GPU, and the SAM-family vector work (norms, ε, restoring
# θ) is not free. `StepAtoms` holds the atoms of a step timed on the cell's own device and
# setting after warm-up (`trainers.probe.measure_atoms`); `sa_extra_time` composes them into the
# extra time of one sharpness-aware step, in base-step units (a base step is 1).

COSTS = ("flops", "time")  # the user's choice of cost: pass units (model) or measured time
COST_COLUMNS = {"flops": "extra_passes_model", "time": "extra_time_measured"}
COST_NAMES = {
    "flops": "extra forward-backward passes per step (FLOP model; SAM = 1)",
    "time": "measured extra time per step (base step = 1)",
}


@dataclass(frozen=True)
class StepAtoms:
    """Seconds of the atoms of a training step, each a mean over timed repetitions after warm-up.

    base_step: a whole base step (forward, backward, base optimizer step, scheduler): the unit.
    fb: forward-backward on the whole batch. fb_fraction: on ⌊fraction·B⌋ samples.
    rank_forward: a no-grad forward over the batch (ESAM's ranking), None where not measured.
    frozen_first_pass: forward-backward with the tensors of a β-draw frozen (ESAM), at `beta`.
    vector: SAM-family vector work of a two-pass step beyond the base step's optimizer work
    (first_step + second_step − base_step). reuse_vector: LookSAM's one-pass reuse step's beyond
    the base step's (reuse_step − base_step)."""

    base_step: float
    fb: float
    vector: float
    fraction: float = 1.0
    fb_fraction: float | None = None
    rank_forward: float | None = None
    beta: float = 1.0
    frozen_first_pass: float | None = None
    reuse_vector: float | None = None

    def fb_at(self, fraction: float) -> float:
        """Forward-backward time on `fraction` of the batch: piecewise linear through (0, 0),
        (`self.fraction`, `fb_fraction`) where measured, and (1, `fb`)."""
        if fraction >= 1.0:
            return self.fb
        f0, t0 = (self.fraction, self.fb_fraction) if self.fb_fraction is not None else (1.0, 0.0)
        if f0 >= 1.0:
            return self.fb * fraction
        if fraction <= f0:
            return t0 * fraction / f0
        return t0 + (fraction - f0) / (1.0 - f0) * (self.fb - t0)

    def first_pass_saving(self, beta: float) -> float:
        """Seconds a first pass saves when 1 − β of the tensors are frozen (measured at
        `self.beta`, scaled linearly in 1 − β)."""
        if self.frozen_first_pass is None or self.beta >= 1.0:
            return 0.0
        return (self.fb - self.frozen_first_pass) * (1.0 - beta) / (1.0 - self.beta)


# the probes table's column of each StepAtoms field (seconds, except the fraction and β)
ATOM_COLUMNS = {
    name: f"atom_{name}" + ("" if name in ("fraction", "beta") else "_s")
    for name in StepAtoms.__dataclass_fields__
}


def base_extra_time(config: CellConfig, atoms: StepAtoms) -> float:
    """Predicted extra time of one X_t = 0 step over a base step, in base-step units: AE-LookSAM
    reuses g_v there (its vector work), every other algorithm takes the base step itself."""
    if config.algorithm == "looksam" and config.looksam_mode == "adaptive":
        return (atoms.reuse_vector or 0.0) / atoms.base_step
    return 0.0


def sa_extra_time(config: CellConfig, atoms: StepAtoms) -> float:
    """Predicted extra time of one sharpness-aware step of `config` (a CellConfig) over a base
    step, in base-step units, from atoms measured on the cell's own device and setting:
    SAM and the two-pass variants: a second forward-backward plus the vector work; LookSAM(k):
    that on one SA step in k and the reuse step's vector work on the others; ESAM(β, γ): the
    frozen first pass's saving, the ranking forward (γ < 1), a γ-fraction second pass and the
    vector work."""
    full = atoms.fb + atoms.vector
    if config.algorithm == "looksam" and config.looksam_mode == "adaptive":
        extra = full  # AE-LookSAM: its reuse steps replace base steps (`base_extra_time`)
    elif config.algorithm == "looksam":
        reuse = atoms.reuse_vector or 0.0
        extra = (full + (config.looksam_k - 1) * reuse) / config.looksam_k
    elif config.algorithm == "esam":
        gamma = config.esam_gamma
        ranked = int(gamma * config.batch_size) < config.batch_size
        rank = (atoms.rank_forward or 0.0) if ranked else 0.0
        saving = atoms.first_pass_saving(config.esam_beta)
        extra = atoms.fb_at(gamma) + rank + atoms.vector - saving
    else:
        extra = full
    return extra / atoms.base_step

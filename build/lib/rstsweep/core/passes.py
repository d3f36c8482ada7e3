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

from typing import Any

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


def esam_extra(beta: float, gamma: float, ranked: bool = True) -> float:
    """Expected extra of one ESAM step: a γ-fraction second pass, the ranking forward (only when
    γ selects a strict subset) and the skipped weight gradients of the 1 − β unchosen share (in
    expectation 1 − β of every tensor's entries, whatever the tensor sizes)."""
    rank = ranking_forward() if ranked else 0.0
    return second_pass(gamma) + rank + skipped_weight_grads(1.0 - beta)


def expected_sa_extra(config: Any) -> float:
    """Expected extra passes of one sharpness-aware step of `config.algorithm` (a CellConfig):
    LookSAM runs its second pass on every k-th SA step, ESAM as `esam_extra`, the others as their
    registry entry (`AlgorithmSpec.extra_passes`). The planner and status use this."""
    from rstsweep.core.algorithms import get_algorithm

    if config.algorithm == "looksam":
        return second_pass() / config.looksam_k
    if config.algorithm == "esam":
        return esam_extra(config.esam_beta, config.esam_gamma, ranked=config.esam_gamma < 1.0)
    return get_algorithm(config.algorithm).extra_passes

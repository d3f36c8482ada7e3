"""Mixup (Zhang et al., 2018) on the training device, per batch, seeded.

Each batch is mixed with a permutation of itself: x' = λ·x + (1−λ)·x[π], with soft targets
y' = λ·onehot(y) + (1−λ)·onehot(y[π]), λ ~ Beta(α, α). The targets stay class probabilities, which
`F.cross_entropy` takes directly, so every loss of a step (both SAM passes, ESAM's ranking) sees
the same mixed batch. λ is drawn on the host (numpy; a plain float, no device sync) and π on the
device, both from generators seeded by (seed, epoch) only: a resumed run mixes identically.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

_SALT = 0x313A  # keeps the mixup streams apart from the augmentation's


def mixup_batches(
    batches: Iterator[tuple[Tensor, Tensor]], num_classes: int, alpha: float, seed: int, epoch: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """The mixed (images, soft targets N×C float32) batches of one epoch."""
    if alpha <= 0:
        raise ValueError(f"mixup_alpha: {alpha} must be > 0")
    seeds = np.random.SeedSequence([int(seed), int(epoch), _SALT]).generate_state(2, np.uint64)
    lambdas = np.random.default_rng(int(seeds[0]))
    generator: torch.Generator | None = None
    for x, y in batches:
        if generator is None:  # on the batches' device
            generator = torch.Generator(device=x.device).manual_seed(int(seeds[1] >> np.uint64(1)))
        lam = float(lambdas.beta(alpha, alpha))
        perm = torch.randperm(x.shape[0], generator=generator, device=x.device)
        onehot = F.one_hot(y, num_classes).to(x.dtype)
        yield x * lam + x[perm] * (1.0 - lam), onehot * lam + onehot[perm] * (1.0 - lam)

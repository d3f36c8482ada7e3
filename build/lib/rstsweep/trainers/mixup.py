"""Mixup (Zhang et al., 2018) on the training device, per batch, seeded, as the RST authors'
`augmentation.mixup`: one λ ~ Beta(α, α) per batch, taken as max(λ, 1 − λ) (the batch's own
samples dominate), each sample mixed with its mirror in the (already shuffled) batch:

    x'_i = λ·x_i + (1−λ)·x_{B−1−i},   y'_i = λ·onehot(y_i) + (1−λ)·onehot(y_{B−1−i}).

The targets stay class probabilities, which `F.cross_entropy` takes directly, so every loss of a
step (both SAM passes, ESAM's ranking) sees the same mixed batch. λ is drawn on the host (numpy,
a plain float: no device sync) from a generator seeded by (seed, epoch) only, so a resumed run
mixes identically.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch.nn.functional as F
from torch import Tensor

_SALT = 0x313A  # keeps the mixup stream apart from the augmentation's


def mixup_batches(
    batches: Iterator[tuple[Tensor, Tensor]], num_classes: int, alpha: float, seed: int, epoch: int
) -> Iterator[tuple[Tensor, Tensor]]:
    """The mixed (images, soft targets N×C in the images' dtype) batches of one epoch."""
    if alpha <= 0:
        raise ValueError(f"mixup_alpha: {alpha} must be > 0")
    lambdas = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), _SALT]))
    for x, y in batches:
        lam = float(lambdas.beta(alpha, alpha))
        lam = max(lam, 1.0 - lam)
        onehot = F.one_hot(y, num_classes).to(x.dtype)
        yield x * lam + x.flip(0) * (1.0 - lam), onehot * lam + onehot.flip(0) * (1.0 - lam)

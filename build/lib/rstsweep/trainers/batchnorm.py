"""BatchNorm during SAM's second pass: the running statistics must come from the first pass only
(the perturbed weights' batch statistics would otherwise leak into them), done in a way that
torch.compile handles (no module attribute toggling)."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator

import torch
from torch import Tensor, nn

_BN_STASH: weakref.WeakKeyDictionary[nn.Module, list[Tensor]] = weakref.WeakKeyDictionary()


def _bn_buffers(model: nn.Module) -> list[Tensor]:
    """running_mean, running_var and num_batches_tracked of every BN layer that tracks them."""
    return [
        buf
        for m in model.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        for buf in (m.running_mean, m.running_var, m.num_batches_tracked)
        if buf is not None
    ]


@contextlib.contextmanager
def disable_running_stats(model: nn.Module) -> Iterator[None]:
    """Run SAM's second pass without changing BatchNorm running statistics.

    Inside the block BN runs as usual (train mode: it normalises with the batch statistics and
    updates its buffers); on exit running_mean, running_var and num_batches_tracked are written
    back bit-exactly from a copy taken on entry, so the kept statistics are the first pass's.
    No module attribute changes, so a compiled model sees the same module in both passes and
    compiles one graph (toggling BN attributes such as `momentum` between passes is what Dynamo
    has handled wrongly: pytorch/pytorch#98928, #124717). The write-back goes through `.data`:
    autograd's version counters of the buffers stay as they were, so a backward may run inside
    or after the block (training-mode BN's backward reads only the batch statistics).
    """
    buffers = _bn_buffers(model)
    stash = _BN_STASH.get(model)

    def layout(ts: list[Tensor]) -> list[tuple]:
        return [(t.shape, t.dtype, t.device) for t in ts]

    if stash is None or layout(stash) != layout(buffers):
        stash = [b.detach().clone() for b in buffers]
        _BN_STASH[model] = stash
    elif buffers:
        torch._foreach_copy_(stash, [b.detach() for b in buffers])
    try:
        yield
    finally:
        if buffers:
            with torch.no_grad():
                torch._foreach_copy_([b.data for b in buffers], stash)

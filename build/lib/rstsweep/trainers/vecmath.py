"""Multi-tensor vector math over parameter lists (`torch._foreach_*`): global norms, inner
products, orthogonal components and global-norm clipping, accumulated in at least fp32 with a
small epsilon, as 0-dim tensors (no host sync)."""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-12  # in every division by a norm
CLIP_EPS = 1e-6  # as torch.nn.utils.clip_grad_norm_


# ----------------------------------------------------------------------------- multi-tensor math
def _acc_dtype(tensors: list[Tensor]) -> torch.dtype:
    """Accumulation dtype: at least fp32 (bf16/fp16 grads are summed in fp32; fp64 stays fp64)."""
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def global_norm(tensors: list[Tensor]) -> Tensor:
    """‖tensors‖₂ over all their entries, as a 0-dim tensor (no host sync)."""
    if not tensors:
        return torch.zeros(())
    norms = torch._foreach_norm(tensors, 2, dtype=_acc_dtype(tensors))
    device = norms[0].device
    return torch.linalg.vector_norm(torch.stack([n.to(device) for n in norms]))


def global_dot(xs: list[Tensor], ys: list[Tensor]) -> Tensor:
    """⟨xs, ys⟩ summed over all tensors, as a 0-dim tensor."""
    dtype = _acc_dtype(xs)
    prods = torch._foreach_mul(xs, ys)
    device = prods[0].device
    return torch.stack([p.sum(dtype=dtype).to(device) for p in prods]).sum()


def orthogonal(x: list[Tensor], d: list[Tensor]) -> list[Tensor]:
    """The component of x orthogonal to d: x − (⟨x,d⟩/‖d‖²)·d (a new list)."""
    coef = global_dot(x, d) / (global_norm(d).square() + EPS)
    return torch._foreach_sub(x, torch._foreach_mul(d, coef))


def clip_(grads: list[Tensor], max_norm: float) -> None:
    """Scale `grads` in place to global norm at most `max_norm` (as clip_grad_norm_)."""
    if grads:
        coef = (max_norm / (global_norm(grads) + CLIP_EPS)).clamp(max=1.0)
        torch._foreach_mul_(grads, coef.to(grads[0].device))

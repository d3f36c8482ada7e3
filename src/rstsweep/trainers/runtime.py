"""Where and how a cell runs, never part of its identity: the device, bf16 autocast, channels_last,
torch threads, the seeding of every global RNG and the input memory format."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from rstsweep.core.config import CellConfig
from rstsweep.errors import RstError


@dataclass(frozen=True)
class Runtime:
    """Where and how a cell runs (never part of its identity)."""

    device: torch.device
    amp: bool
    channels_last: bool

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)


def resolve_runtime(config: CellConfig) -> Runtime:
    """`device` auto → cuda if available else cpu; AMP (bf16) and channels_last on CUDA only."""
    name = config.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise RstError(f"device: {name!r} is not a torch device ({exc})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RstError(f"device: {name!r} requested but CUDA is not available")
    on_cuda = device.type == "cuda"
    amp = on_cuda if config.amp is None else (config.amp and on_cuda)
    channels_last = on_cuda if config.channels_last is None else (config.channels_last and on_cuda)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    return Runtime(device=device, amp=amp, channels_last=channels_last)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU + CUDA), numpy's and python's global RNGs (the model init uses torch's)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def to_memory_format(x: Tensor, runtime: Runtime) -> Tensor:
    if runtime.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x

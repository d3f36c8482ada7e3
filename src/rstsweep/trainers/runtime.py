"""Where and how a cell runs: the device, the resolved precision (autocast dtype), channels_last,
torch.compile, deterministic algorithms, torch threads, the CPU heap (`retain_cpu_heap`), the
seeding of every global RNG and the input memory format. Of these only an explicit precision is
part of a cell's identity (see `rstsweep.core.config`)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rstsweep.errors import RstError

if TYPE_CHECKING:  # the config is only read here: keep this module importable without pydantic
    from rstsweep.core.config import CellConfig

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# cuBLAS needs a fixed workspace for deterministic results (CUDA docs, "Results reproducibility")
CUBLAS_WORKSPACE = ":4096:8"


@dataclass(frozen=True)
class Runtime:
    """Where and how a cell runs (never part of its identity)."""

    device: torch.device
    precision: str  # resolved: fp32, bf16 or fp16
    channels_last: bool
    compile: bool = False
    deterministic: bool = False

    @property
    def amp(self) -> bool:
        """Whether the passes run under autocast (bf16 or fp16)."""
        return AUTOCAST_DTYPES[self.precision] is not None

    def autocast(self) -> contextlib.AbstractContextManager:
        dtype = AUTOCAST_DTYPES[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` -> bf16 on CUDA, fp32 on every other device; an explicit precision is kept."""
    if precision == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    return precision


def set_deterministic(on: bool) -> None:
    """Deterministic algorithms on or off for this process (set for every cell: a reused worker
    process must not keep the previous cell's choice). On, cuBLAS gets its fixed workspace unless
    the environment already chose one; cuDNN autotuning stays off either way."""
    if on:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.benchmark = False


# glibc's malloc returns large blocks (activations, gradients: above a threshold it moves between
# 128 KiB and 32 MiB) to the kernel when they are freed and trims the heap's top, so every pass of
# a CPU step page-faults its buffers in again: on a 2-core machine 14 % of a fastcnn step's CPU
# time went to the kernel, and step times jittered with it (PyTorch's CPU performance tuning guide
# suggests another allocator for the same reason). The threshold fixed at its largest value and
# the top never trimmed keep those buffers in the heap: the process holds its peak, which a
# training loop reaches every step anyway. Blocks above the largest threshold stay mmapped.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
MMAP_THRESHOLD_MAX = 4 * 2**20 * ctypes.sizeof(ctypes.c_long)  # glibc: 32 MiB on 64-bit
TRIM_THRESHOLD = 2**30


@functools.cache
def _glibc_mallopt() -> Callable[[int, int], int] | None:
    """glibc's `mallopt` of this process, None under another libc (looked up once: `libc_ver`
    reads the interpreter's binary, and every CPU cell resolves its runtime)."""
    if platform.libc_ver()[0] != "glibc":
        return None
    return ctypes.CDLL(None).mallopt


def retain_cpu_heap() -> bool:
    """Keep a CPU step's buffers in glibc's heap (see above); whether it was applied. Not where
    the libc is not glibc, nor where the user tuned the allocator (MALLOC_* or GLIBC_TUNABLES)."""
    tuned = "GLIBC_TUNABLES" in os.environ or any(k.startswith("MALLOC_") for k in os.environ)
    mallopt = None if tuned else _glibc_mallopt()
    if mallopt is None:
        return False
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


def resolve_runtime(config: CellConfig) -> Runtime:
    """`device` auto → cuda if available else cpu; precision auto → bf16 on CUDA, fp32 elsewhere;
    channels_last on CUDA only; deterministic algorithms as the config says; on the CPU, the
    heap kept (`retain_cpu_heap`)."""
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
    channels_last = on_cuda if config.channels_last is None else (config.channels_last and on_cuda)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    set_deterministic(config.deterministic)
    if device.type == "cpu":
        retain_cpu_heap()
    return Runtime(
        device=device,
        precision=resolve_precision(config.precision, device),
        channels_last=channels_last,
        compile=config.compile,
        deterministic=config.deterministic,
    )


def seed_everything(seed: int) -> None:
    """Seed torch (CPU + CUDA), numpy's and python's global RNGs (the model init uses torch's)."""
    import numpy as np  # here: the step modules import this one and must not need numpy

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def to_memory_format(x: Tensor, runtime: Runtime) -> Tensor:
    if runtime.channels_last and x.dim() == 4:
        return x.contiguous(memory_format=torch.channels_last)
    return x

"""Device memory of a trial: its cap (several trials packed on one GPU) and its peak.

Cap: `torch.cuda.set_per_process_memory_fraction` limits what this process's caching allocator
may take of the GPU, so one trial that grows cannot starve the trials packed beside it (it gets an
out-of-memory error instead). The CUDA context (a few hundred MiB per process) is outside the
allocator and not counted. On the CPU there is nothing to cap: a no-op.

Peak: on CUDA, `torch.cuda.max_memory_allocated` since the cell started (tensors only: the
allocator's cache and the context come on top). On the CPU, the process's peak resident set size
(Linux VmHWM, reset when the cell starts so a reused worker process reports this cell; where it
cannot be reset or read, the process's lifetime peak from getrusage). A resumed cell reports the
peak of its last process. Torch only (no pydantic): the GPU benchmark uses it.
"""

from __future__ import annotations

import contextlib
import resource
import sys
from pathlib import Path

import torch

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def apply_memory_fraction(fraction: float | None, device: torch.device) -> float | None:
    """Cap this process's share of the GPU's memory; returns the cap applied (None: none)."""
    if fraction is None or device.type != "cuda" or fraction >= 1.0:
        return None
    # an index, not torch.device("cuda"): this one call refuses a device without an index
    index = device.index if device.index is not None else torch.cuda.current_device()
    torch.cuda.set_per_process_memory_fraction(float(fraction), index)
    return float(fraction)


def prepare_device_memory(fraction: float | None, device: torch.device) -> None:
    """At the start of a cell: apply its memory cap and start measuring its peak."""
    apply_memory_fraction(fraction, device)
    reset_peak_memory(device)


def reset_peak_memory(device: torch.device) -> None:
    """Start measuring the peak afresh (the CUDA allocator's peak, or the process's VmHWM)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):
        _CLEAR_REFS.write_text("5")  # Linux >= 4.0: resets VmHWM to the current RSS


def peak_memory_bytes(device: torch.device) -> int | None:
    """Peak memory since `reset_peak_memory` (see the module docstring); None if unknown."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    if device.type != "cpu":
        return None
    with contextlib.suppress(OSError, ValueError):
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, else KiB


def device_memory_bytes(device: torch.device) -> int | None:
    """Total memory of the GPU (None on other devices)."""
    if device.type != "cuda":
        return None
    return int(torch.cuda.get_device_properties(device).total_memory)

"""Per-cell accounting (steps, SA steps, extra pass units, wall time by branch and of the SA
steps' first pass) and the step timer that measures them without a per-step host-device sync
(CUDA events resolved at epoch end)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Accounting:
    """Running totals of one cell; saved in every checkpoint so a resumed run continues them.

    The first step of each branch in a process (one-time kernel selection, allocator growth,
    lazy CUDA init) is kept apart in `warmup_*`, so the mean step times compare the branches'
    steady-state costs; `train_time_s` includes everything."""

    steps: int = 0
    sa_steps: int = 0
    train_time_s: float = 0.0
    base_time_s: float = 0.0
    base_count: int = 0
    sa_time_s: float = 0.0
    sa_count: int = 0
    warmup_base_s: float = 0.0
    warmup_base_count: int = 0
    warmup_sa_s: float = 0.0
    warmup_sa_count: int = 0
    extra_passes: float = 0.0  # Σ extra pass units run (rstsweep.core.passes)
    first_pass_s: float = 0.0  # Σ first forward-backward time of warm SA steps with first_step
    first_pass_count: int = 0

    def mean_first_pass(self) -> float | None:
        return self.first_pass_s / self.first_pass_count if self.first_pass_count else None

    def mean_base_step(self) -> float | None:
        return _mean(self.base_time_s, self.base_count, self.warmup_base_s, self.warmup_base_count)

    def mean_sa_step(self) -> float | None:
        return _mean(self.sa_time_s, self.sa_count, self.warmup_sa_s, self.warmup_sa_count)

    def add_step_time(self, seconds: float, sa: bool, warmup: bool) -> None:
        if warmup and sa:
            self.warmup_sa_s += seconds
            self.warmup_sa_count += 1
        elif warmup:
            self.warmup_base_s += seconds
            self.warmup_base_count += 1
        elif sa:
            self.sa_time_s += seconds
            self.sa_count += 1
        else:
            self.base_time_s += seconds
            self.base_count += 1


def _mean(total: float, count: int, warm_total: float, warm_count: int) -> float | None:
    if count:
        return total / count
    return warm_total / warm_count if warm_count else None  # only warm-up steps: better than none


class StepTimer:
    """Per-step wall time split by branch without a per-step host-device sync.

    On CUDA each step records a pair of events, resolved at `flush()` (epoch end, after the sync
    that reads the epoch loss); on CPU work is synchronous, so `perf_counter` is exact and cheap.
    One timer lives as long as the cell in this process: it knows which branches are warmed up.
    """

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self._pending: list[tuple[Any, Any, bool, Any]] = []
        self._t0 = 0.0
        self._start: Any = None
        self._mid: Any = None  # end of the SA step's first pass (mark_first_pass), if any
        self._warm: set[bool] = set()  # branches (sa flag) whose first step this process has seen

    def start(self) -> None:
        self._mid = None
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t0 = time.perf_counter()

    def mark_first_pass(self) -> None:
        """The first forward-backward of the current step ends here (the optimizer's
        `on_first_pass_end` hook, called at the start of `first_step`)."""
        if self.cuda:
            self._mid = torch.cuda.Event(enable_timing=True)
            self._mid.record()
        else:
            self._mid = time.perf_counter() - self._t0

    def stop(self, sa: bool, acc: Accounting) -> None:
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._pending.append((self._start, end, sa, self._mid))
            return
        self._add(acc, time.perf_counter() - self._t0, sa, self._mid)

    def flush(self, acc: Accounting) -> None:
        if not self._pending:
            return
        torch.cuda.synchronize()
        for start, end, sa, mid in self._pending:
            first = None if mid is None else start.elapsed_time(mid) / 1000.0
            self._add(acc, start.elapsed_time(end) / 1000.0, sa, first)
        self._pending.clear()

    def _add(self, acc: Accounting, seconds: float, sa: bool, first: float | None) -> None:
        warmup = sa not in self._warm
        acc.add_step_time(seconds, sa, warmup=warmup)
        if first is not None and not warmup:
            acc.first_pass_s += first
            acc.first_pass_count += 1
        self._warm.add(sa)

"""Per-cell accounting (steps, SA steps, wall time by branch) and the step timer that measures
each branch without a per-step host-device sync (CUDA events resolved at epoch end)."""

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
        self._pending: list[tuple[Any, Any, bool]] = []
        self._t0 = 0.0
        self._start: Any = None
        self._warm: set[bool] = set()  # branches (sa flag) whose first step this process has seen

    def start(self) -> None:
        if self.cuda:
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()
        else:
            self._t0 = time.perf_counter()

    def stop(self, sa: bool, acc: Accounting) -> None:
        if self.cuda:
            end = torch.cuda.Event(enable_timing=True)
            end.record()
            self._pending.append((self._start, end, sa))
            return
        self._add(acc, time.perf_counter() - self._t0, sa)

    def flush(self, acc: Accounting) -> None:
        if not self._pending:
            return
        torch.cuda.synchronize()
        for start, end, sa in self._pending:
            self._add(acc, start.elapsed_time(end) / 1000.0, sa)
        self._pending.clear()

    def _add(self, acc: Accounting, seconds: float, sa: bool) -> None:
        acc.add_step_time(seconds, sa, warmup=sa not in self._warm)
        self._warm.add(sa)

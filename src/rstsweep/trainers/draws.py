"""Where a run's coins X_t come from, step by step: precomputed for an open-loop schedule, decided
by a policy's controller for a closed-loop one (`rstsweep.schedules.policies`).

Both fill `draws` (bool, length T) as the run goes; a policy source also fills `signals`
(float32 ‖g_t‖² of each step's first pass, NaN until known). With the default lag (SIGNAL_LAG)
there is no per-step host-device sync: the signal of step t is copied to host memory without
blocking (pinned buffer + CUDA event on a GPU) and read only when step t + lag needs it; by then
step t has long finished, since one step is still queued behind it. `flush()` (after the epoch's
one sync) reads what is left. With lag 0 (`signal_lag: 0`, the published AE-SAM rule) the step is
decided after its own first pass: `decide` returns None and the step calls `decide_now` with its
signal, one scalar read per step.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from rstsweep.schedules import SIGNAL_LAG, Policy, Schedule, uniforms


class ScheduleDraws:
    """Open loop: X_t = U_t < p(t/T), all precomputed (the schedule's `draws`)."""

    wants_signal = False
    lag = 0  # the coins are known in advance

    def __init__(self, schedule: Schedule, total: int, seed: int, warmup: int = 0) -> None:
        self.draws = np.array(schedule.draws(total, seed), dtype=bool)  # a copy: edited below
        # `warmup_sgd`: the warm-up steps' coins are forced to 0 (the RST authors take SGD steps
        # there); the later draws are unchanged
        self.draws[:warmup] = False
        self.signals: np.ndarray | None = None
        self._list = self.draws.tolist()  # python bools: no numpy scalar work per step

    def decide(self, t: int) -> bool:
        return self._list[t]

    def set_draws(self, draws: np.ndarray) -> None:
        """Take other coins (benchmarks: an open-loop run replaying a policy's coins)."""
        self.draws[:] = np.asarray(draws, dtype=bool)
        self._list = self.draws.tolist()

    def observe(self, t: int, signal: torch.Tensor | None) -> None:
        """Schedules ignore the signal."""

    def flush(self) -> None:
        """Nothing pending."""

    def restore(self, steps: int, signals: np.ndarray | None) -> None:
        """Precomputed: nothing to rebuild."""


class PolicyDraws:
    """Closed loop: X_t = U_t < p_t, p_t from the policy's controller and the lagged signal."""

    wants_signal = True

    def __init__(
        self,
        policy: Policy,
        total: int,
        seed: int,
        device: torch.device,
        warmup: int = 0,
        lag: int = SIGNAL_LAG,
    ) -> None:
        self.policy = policy
        self.warmup = warmup  # `warmup_sgd`: no SA step before this step
        self.total = total
        self.lag = lag
        self.uniforms = uniforms(total, seed).tolist()
        self.draws = np.zeros(total, dtype=bool)
        self.signals = np.full(total, np.nan, dtype=np.float32)
        self.controller = policy.controller(total)
        self._cuda = device.type == "cuda"
        # steps whose signal is on its way to the host: step -> (host tensor, event or None)
        self._pending: dict[int, tuple[torch.Tensor, torch.cuda.Event | None]] = {}
        # pinned host slots reused round-robin (allocating pinned memory per step is slow)
        slots = lag + 2 if self._cuda and lag > 0 else 0
        self._slots = [torch.empty(2, pin_memory=True) for _ in range(slots)]

    def decide(self, t: int) -> bool | None:
        """X_t from the signal of step t − lag; None with lag 0 (`decide_now` after the first
        pass)."""
        if self.lag == 0:
            return None
        lagged = t - self.lag
        signal = math.nan
        if lagged >= 0:
            self._collect(lagged)
            signal = float(self.signals[lagged])
        return self._draw(t, signal)

    def decide_now(self, t: int, signal: torch.Tensor) -> bool:
        """Lag 0: X_t from step t's own [‖g‖², loss] (reads the scalar: one host sync)."""
        self.signals[t] = float(signal.reshape(-1)[0])
        return self._draw(t, float(self.signals[t]))

    def _draw(self, t: int, signal: float) -> bool:
        x = t >= self.warmup and self.uniforms[t] < self.controller.probability(t, signal)
        self.controller.record(t, x)
        self.draws[t] = x
        return x

    def observe(self, t: int, signal: torch.Tensor | None) -> None:
        """Start the copy of step t's ‖g‖² to the host (non-blocking on a GPU)."""
        if signal is None or self.lag == 0:  # lag 0: read when decided
            return
        if not self._cuda:
            self._pending[t] = (signal, None)
            return
        host = self._slots[t % len(self._slots)]
        host.copy_(signal, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._pending[t] = (host, event)

    def flush(self) -> None:
        for t in sorted(self._pending):
            self._collect(t)

    def restore(self, steps: int, signals: np.ndarray | None) -> None:
        """Rebuild the controller at step `steps` by replaying the checkpoint's signals (the
        draws are a pure function of them and the seed, so this lands in the same state)."""
        if signals is None:
            raise ValueError("a policy checkpoint must carry its signals")
        self.signals[:steps] = signals[:steps]
        for t in range(steps):
            if self.lag == 0:
                self._draw(t, float(self.signals[t]))
            else:
                self.decide(t)

    def _collect(self, t: int) -> None:
        entry = self._pending.pop(t, None)
        if entry is None:
            return
        host, event = entry
        if event is not None:
            event.synchronize()  # step t finished long ago: returns at once
        self.signals[t] = float(host.reshape(-1)[0])


def draw_source(
    schedule: Schedule | Policy,
    total: int,
    seed: int,
    device: torch.device,
    warmup: int = 0,
    lag: int = SIGNAL_LAG,
) -> ScheduleDraws | PolicyDraws:
    """The per-step draw source of a run: precomputed for schedules, policy-driven for policies
    (deciding from the signal of step t − lag); the first `warmup` coins are 0 (`warmup_sgd`)."""
    if isinstance(schedule, Policy):
        return PolicyDraws(schedule, total, seed, device, warmup, lag)
    return ScheduleDraws(schedule, total, seed, warmup)

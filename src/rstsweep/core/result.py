"""What one training run returns: the numbers of the store's `trials`, `epochs` and `draws` tables.

Plain data (numpy, no torch) so the sweeper can move it between processes and write it to Parquet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class EpochRecord:
    """One row of the `epochs` table (cumulative steps, SA steps and training time)."""

    epoch: int
    train_loss: float
    train_error: float
    test_loss: float
    test_error: float
    lr: float
    steps: int
    sa_steps: int
    time_s: float


@dataclass
class TrainResult:
    """Outcome of `rstsweep.trainers.train(config)`.

    `status` is "ok" or "diverged" (NaN/inf loss; `error` says where). Errors are fractions
    in [0, 1].
    `draws` holds X_0..X_{steps-1} actually taken (bool); `signals` the float32 ‖g_t‖² a
    closed-loop policy saw (None for open-loop schedules). Step times are means per branch.
    """

    cell_id: str
    status: str
    error: str | None
    steps: int
    sa_steps: int
    expected_extra: float
    closed_form_extra: float
    train_time_s: float
    sgd_step_s: float | None
    sa_step_s: float | None
    train_loss: float
    train_error: float
    test_loss: float
    test_error: float
    epochs: list[EpochRecord] = field(default_factory=list)
    draws: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    signals: np.ndarray | None = None

    @property
    def realized_extra(self) -> float:
        return self.sa_steps / self.steps if self.steps else 0.0

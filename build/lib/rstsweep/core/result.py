"""What one training run returns: the numbers of the store's `trials`, `epochs` and `draws` tables.

Plain data (numpy, no torch) so the sweeper can move it between processes and write it to Parquet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The keys of TrainResult.manifest, which are also trial-row columns of the same names.
MANIFEST_KEYS: tuple[str, ...] = (
    "torch_version",
    "cuda_version",
    "cudnn_version",
    "device_type",
    "device_name",
    "device_memory_bytes",
    "device_count",
    "driver_version",
    "precision",
    "compiled",
    "deterministic",
    "git_commit",
    "git_dirty",
)


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
    closed-loop policy saw (None for open-loop schedules). Step times are means per branch;
    `first_pass_s` is the mean time of an SA step's first forward-backward (up to `first_step`).

    Two Δη's: `sa_fraction` = ΣX_t/T, the coin fraction the schedule asked for, and
    `realized_extra` = `extra_passes`/T, the extra compute the steps actually ran in
    forward-backward pass units under the cost model of `rstsweep.core.passes` (a LookSAM reuse
    step adds 0, ESAM its partial passes). `expected_extra` (and `closed_form_extra`) is the
    schedule's expectation of `sa_fraction`, not of the passes. A result built without pass counting
    (`extra_passes` None) counts every SA step as one full extra pass.
    `skipped_steps`: fp16 steps whose gradients overflowed and that the loss scaler skipped (they
    count in `steps`). `peak_memory_bytes`: the device's peak (CUDA: max allocated; CPU: peak
    RSS; None if unknown). `manifest`: versions, device and settings the run used (see
    `rstsweep.trainers.manifest`).
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
    world_size: int = 1  # data-parallel processes that trained the cell
    skipped_steps: int = 0
    peak_memory_bytes: int | None = None
    manifest: dict = field(default_factory=dict)
    extra_passes: float | None = None
    first_pass_s: float | None = None
    signals: np.ndarray | None = None

    @property
    def sa_fraction(self) -> float:
        return self.sa_steps / self.steps if self.steps else 0.0

    @property
    def realized_extra(self) -> float:
        if self.extra_passes is None:
            return self.sa_fraction
        return self.extra_passes / self.steps if self.steps else 0.0

"""The one training loop every sweep cell runs: `train(config) -> TrainResult`.

Per global step t (0 ≤ t < T = steps_per_epoch × epochs) the precomputed coin X_t ~ Bernoulli(p(t))
(`rstsweep.schedules`, seeded by `config.seed`) chooses a one-pass base step or the sharpness-aware
step of `config.algorithm` (Zhao et al., "Randomized Sharpness-Aware Training"); `step.py` has the
step, `cell.py` the built run and one epoch, `state.py` the checkpoint contents.

Accounting: losses and correct counts are accumulated on the device and read once per epoch (no
per-step host-device sync); that read is also where divergence is detected (a non-finite epoch
loss stops the cell with status "diverged"). Step wall times are split by branch (`timing.py`);
the means leave out each branch's first step in a process (warm-up). `train_time_s` covers all
training, not evaluation.

Checkpoints: with `out_dir`, an atomic `checkpoint.pt` is written at every epoch boundary and
`resume=True` continues from it, ending bit-identical to an uninterrupted run (wall times aside).
A diverged epoch is never checkpointed (nor is a non-finite fp16 forward: it counts as divergence;
an fp16 step whose gradients overflow is skipped by the loss scaler, see `precision.py`). GPU runs
are as deterministic as cuDNN's default algorithms (benchmark off); `deterministic: true` turns on
torch's deterministic algorithms for bit-identical GPU resumes.

Every result carries its peak device memory and a reproducibility manifest (`manifest.py`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from rstsweep.core.config import CellConfig
from rstsweep.core.names import CHECKPOINT_NAME, FINAL_WEIGHTS_NAME
from rstsweep.core.result import EpochRecord, TrainResult
from rstsweep.trainers.augment import test_batches
from rstsweep.trainers.cell import (
    Cell,
    build_cell,
    current_lr,
    divergence,
    epoch_record,
    expected_coin_fraction,
    run_epoch,
)
from rstsweep.trainers.checkpoint import atomic_torch_save, remove_stale_temporaries
from rstsweep.trainers.manifest import collect_manifest
from rstsweep.trainers.memory import peak_memory_bytes
from rstsweep.trainers.progress import progress_bar
from rstsweep.trainers.state import checkpoint_state, restore_cell
from rstsweep.trainers.step import evaluate

EVAL_BATCH_SIZE = 1024


def train(
    config: CellConfig,
    out_dir: Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Run one cell. With `out_dir`, write `checkpoint.pt` at every epoch boundary and
    `final.pt` (the model's state_dict) at the end; `resume=True` continues from an existing
    checkpoint (and starts fresh when there is none). `on_epoch` gets each EpochRecord after its
    checkpoint is on disk. `progress` shows a rich progress bar (stderr) updated every step."""
    cell = build_cell(config)
    ckpt = None
    if out_dir is not None:
        ckpt = Path(out_dir) / CHECKPOINT_NAME
        remove_stale_temporaries(Path(out_dir))
        if resume and ckpt.exists():
            restore_cell(cell, ckpt)
    status, error = "ok", None
    with progress_bar(progress, cell) as on_step:
        while cell.epoch < config.epochs:
            record, evaluated = _train_and_evaluate_epoch(cell, on_step)
            cell.records.append(record)
            cell.epoch += 1
            error = divergence(record, evaluated)
            if error is not None:
                status = "diverged"
            elif ckpt is not None:  # a diverged epoch is never checkpointed
                atomic_torch_save(checkpoint_state(cell), ckpt)
            if on_epoch is not None:
                on_epoch(record)
            if status != "ok":
                break
    if out_dir is not None:
        atomic_torch_save(cell.ctx.model.state_dict(), Path(out_dir) / FINAL_WEIGHTS_NAME)
    return _result(cell, status, error)


def _train_and_evaluate_epoch(
    cell: Cell, on_step: Callable[[], None] | None
) -> tuple[EpochRecord, bool]:
    """Train one epoch, then evaluate if this epoch is due (every `eval_every`-th and the last);
    an epoch not evaluated has NaN test metrics. Returns the record and whether it was evaluated."""
    lr = current_lr(cell.ctx.optimizer)  # the lr of the epoch's first step
    train_loss, train_error = run_epoch(cell, on_step)
    epoch = cell.epoch + 1
    due = epoch % cell.config.eval_every == 0 or epoch == cell.config.epochs
    if math.isfinite(train_loss) and due:
        test_loss, test_error = evaluate(
            cell.ctx.model, test_batches(cell.data, EVAL_BATCH_SIZE), cell.runtime
        )
    else:  # not due, or diverged (evaluating NaN weights tells nothing)
        test_loss, test_error = float("nan"), float("nan")
    return epoch_record(cell, lr, (train_loss, train_error), (test_loss, test_error)), due


def _result(cell: Cell, status: str, error: str | None) -> TrainResult:
    last = cell.records[-1] if cell.records else None
    signals = cell.source.signals  # a closed-loop policy's ‖g_t‖², None for schedules
    nan = float("nan")
    return TrainResult(
        cell_id=cell.config.cell_id(),
        status=status,
        error=error,
        steps=cell.acc.steps,
        sa_steps=cell.acc.sa_steps,
        expected_extra=expected_coin_fraction(cell),
        closed_form_extra=float(cell.schedule.closed_form_extra),
        train_time_s=cell.acc.train_time_s,
        sgd_step_s=cell.acc.mean_base_step(),
        sa_step_s=cell.acc.mean_sa_step(),
        train_loss=last.train_loss if last else nan,
        train_error=last.train_error if last else nan,
        test_loss=last.test_loss if last else nan,
        test_error=last.test_error if last else nan,
        epochs=list(cell.records),
        draws=cell.draws[: cell.acc.steps].copy(),
        skipped_steps=cell.ctx.scaling.skipped_steps if cell.ctx.scaling else 0,
        peak_memory_bytes=peak_memory_bytes(cell.runtime.device),
        manifest=collect_manifest(
            cell.runtime.device,
            cell.runtime.precision,
            cell.ctx.passes.compiled,
            cell.runtime.deterministic,
        ),
        extra_passes=cell.acc.extra_passes,
        first_pass_s=cell.acc.mean_first_pass(),
        signals=None if signals is None else signals[: cell.acc.steps].copy(),
    )

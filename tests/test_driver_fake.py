"""A stand-in trainer for the driver tests: sleeps per epoch, checkpoints, resumes, returns results.

It honours the trainer contract the driver relies on (`train(config, out_dir, resume, on_epoch)`;
`out_dir/checkpoint.pt` is on disk when `on_epoch` is called; `resume=True` continues after the
checkpointed epoch) so the Ray plumbing is tested independently of torch. The checkpoint records
which epochs each attempt ran (`ran`), so a test can tell a resumed attempt from a restart.

Ray workers receive these functions pickled by value (`register_by_value`), because they cannot
import this test module. The tests below check the stand-in itself (no Ray).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from rstsweep.core.result import EpochRecord, TrainResult

EPOCH_S = float(os.environ.get("RSTSWEEP_FAKE_EPOCH_S", "0.3"))


def register_by_value() -> None:
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def fake_train(config, out_dir, resume=False, on_epoch=None, epoch_s: float | None = None):
    """Sleep `epoch_s` seconds per epoch (default RSTSWEEP_FAKE_EPOCH_S or 0.3)."""
    return _run(config, Path(out_dir), resume, on_epoch, epoch_s if epoch_s else EPOCH_S)


def always_fails(config, out_dir, resume=False, on_epoch=None):
    """A cell whose training always raises (a bug, not a crash)."""
    raise ValueError(f"boom in {config.cell_id()}")


def _run(config, out: Path, resume: bool, on_epoch, epoch_s: float) -> TrainResult:
    ckpt = out / "checkpoint.pt"
    state = {"epoch": 0, "records": [], "ran": []}
    if resume and ckpt.exists():
        state = json.loads(ckpt.read_text())
    t0 = time.perf_counter()
    while state["epoch"] < config.epochs:
        time.sleep(epoch_s)
        epoch = state["epoch"] + 1
        steps = epoch * 4
        record = EpochRecord(
            epoch=epoch,
            train_loss=1.0 / epoch,
            train_error=0.5 / epoch,
            test_loss=1.1 / epoch,
            test_error=0.6 / epoch,
            lr=0.1,
            steps=steps,
            sa_steps=steps // 2,
            time_s=epoch * epoch_s,
        )
        state["epoch"] = epoch
        state["records"].append(record.__dict__)
        state["ran"].append([epoch, os.getpid()])
        tmp = out / ".tmp-checkpoint.pt"
        tmp.write_text(json.dumps(state))
        os.replace(tmp, ckpt)  # atomic, like the real trainer
        if on_epoch is not None:
            on_epoch(record)
    records = [EpochRecord(**r) for r in state["records"]]
    last = records[-1]
    draws = np.arange(last.steps) % 2 == 0
    return TrainResult(
        cell_id=config.cell_id(),
        status="ok",
        error=None,
        steps=last.steps,
        sa_steps=int(draws.sum()),
        expected_extra=0.5,
        closed_form_extra=0.5,
        train_time_s=time.perf_counter() - t0,
        sgd_step_s=0.01,
        sa_step_s=0.02,
        train_loss=last.train_loss,
        train_error=last.train_error,
        test_loss=last.test_loss,
        test_error=last.test_error,
        epochs=records,
        draws=draws,
    )


# ----------------------------------------------------------------------------- the stand-in's tests


def test_fake_train_resumes_from_its_checkpoint(tmp_path):
    from rstsweep.core.config import CellConfig

    config = CellConfig(epochs=3, seed=1)
    seen = []

    def stop_after_first(record):
        seen.append(record.epoch)
        if record.epoch == 1:
            raise KeyboardInterrupt  # a crash right after the epoch-1 checkpoint

    with contextlib.suppress(KeyboardInterrupt):
        fake_train(config, tmp_path, on_epoch=stop_after_first, epoch_s=0.01)
    result = fake_train(
        config, tmp_path, resume=True, on_epoch=lambda r: seen.append(r.epoch), epoch_s=0.01
    )
    assert seen == [1, 2, 3]  # the resumed attempt started at epoch 2
    assert [e.epoch for e in result.epochs] == [1, 2, 3]
    assert result.steps == 12 and result.sa_steps == 6
    assert [epoch for epoch, _ in json.loads((tmp_path / "checkpoint.pt").read_text())["ran"]] == [
        1,
        2,
        3,
    ]

"""The stand-in trainer of the driver tests (`rstsweep.testing.standin`, also used by the
benchmarks): sleeps per epoch, checkpoints, resumes, returns results. The checkpoint records which
epochs each attempt ran (`ran`), so a test can tell a resumed attempt from a restart.

Ray workers receive these functions pickled by value (`register_by_value`), because they cannot
import this test module. The tests below check the stand-in itself (no Ray).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys

from rstsweep.testing.standin import standin_train

EPOCH_S = float(os.environ.get("RSTSWEEP_FAKE_EPOCH_S", "0.3"))


def register_by_value() -> None:
    import ray.cloudpickle

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def fake_train(config, out_dir, resume=False, on_epoch=None, epoch_s: float | None = None):
    """Sleep `epoch_s` seconds per epoch (default RSTSWEEP_FAKE_EPOCH_S or 0.3)."""
    return standin_train(config, out_dir, resume, on_epoch, epoch_s=epoch_s or EPOCH_S)


def always_fails(config, out_dir, resume=False, on_epoch=None):
    """A cell whose training always raises (a bug, not a crash)."""
    raise ValueError(f"boom in {config.cell_id()}")


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

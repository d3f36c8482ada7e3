"""Data-parallel trials through Ray Tune (`sweeper/multi.py`) with the real trainer: 2 gloo workers
per cell in a placement group, rank 0 killed right after epoch 1 of one cell. The trial is retried
from its epoch checkpoint, the store holds each cell exactly once with world_size 2, and the
retried cell's history equals an uninterrupted 2-process run of the same cell."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rstsweep.store.store import Store
from rstsweep.sweeper.driver import run_sweep
from rstsweep.sweeper.live import read_events
from rstsweep.sweeper.multi import with_world_size
from rstsweep.sweeper.options import RunOptions
from rstsweep.sweeps import expand
from rstsweep.trainers.distributed import train_distributed
from tiny_sweeps import write_tiny_sweeps


@pytest.mark.slow  # real Ray, 2 processes per cell
def test_killed_data_parallel_trial_resumes_and_is_stored_once(tmp_path: Path, monkeypatch) -> None:
    marker = tmp_path / "crashed"
    monkeypatch.setenv("RSTSWEEP_TEST_CRASH_ONCE", str(marker))
    cells = expand(write_tiny_sweeps(tmp_path / "s.yaml", [0.5], epochs=2), "s", "t")
    cells = with_world_size(cells, 2)
    store = Store(tmp_path / "store")
    options = RunOptions(profile="t", progress=False, num_cpus=2, max_failures=2)
    summary = run_sweep(cells, store, options)

    assert marker.exists()  # rank 0 of one cell really died after its epoch-1 report
    assert (summary.done, summary.failed) == (2, 0)
    files = sorted((store.root / "trials").glob("part-*.parquet"))
    raw = pd.concat([pd.read_parquet(f) for f in files])
    assert sorted(raw["cell_id"]) == sorted(c.cell_id for c in cells)  # exactly once each
    assert set(raw["world_size"]) == {2}
    events = read_events(summary.run_dir / "events.jsonl")
    [retry] = [e for e in events if e["event"] == "retry"]
    crashed = retry["cell_id"]
    [done] = [e for e in events if e["event"] == "done" and e["cell_id"] == crashed]
    assert done["start_epoch"] == 1
    stored = store.read("epochs").query("cell_id == @crashed").sort_values("epoch")
    assert list(stored["epoch"]) == [1, 2]
    config = next(c.config for c in cells if c.cell_id == crashed)
    whole = train_distributed(config.model_copy(update={"threads": 1}))
    assert list(stored["train_loss"]) == [r.train_loss for r in whole.epochs]
    assert list(stored["test_loss"]) == [r.test_loss for r in whole.epochs]


# --------------------------------------------------------------------------- fast: no Ray
def test_world_size_is_in_cell_id_only_when_above_one() -> None:
    from rstsweep.core.config import CellConfig

    # ids of cells from before data parallelism existed stay as they were (where nothing else
    # changed what they compute: crops now pad as the RST authors' code does, so no crops here)
    assert CellConfig(augment="none").cell_id() == "02b3bbf71baa1b02"
    # ... and a crop-padded cell, which now pads by reflection, gets a new one (it was 96392efb...)
    assert CellConfig().cell_id() != "96392efb8eeaddf8"
    assert CellConfig(pad_mode="zero").cell_id() != CellConfig().cell_id()
    imagenet = {"algorithm": "sgd", "dataset": "imagenet", "model": "resnet50"}
    assert CellConfig(**imagenet).cell_id() == "5a24135b2fd00faf"
    assert CellConfig(world_size=2).cell_id() != CellConfig().cell_id()
    assert CellConfig(world_size=2, sync_bn=True).cell_id() != CellConfig(world_size=2).cell_id()
    with pytest.raises(ValueError, match="batch_size 256 is not divisible by world_size 3"):
        CellConfig(world_size=3)


def test_gpus_per_trial_above_one_means_workers(tmp_path: Path) -> None:
    from rstsweep.errors import RstError
    from rstsweep.sweeper.multi import check_cluster, world_size_for
    from rstsweep.sweeper.options import Placement

    assert (world_size_for(0.25), world_size_for(1), world_size_for(4)) == (None, None, 4)
    with pytest.raises(RstError, match=r"--gpus-per-trial: 1\.5 > 1 must be a whole number"):
        world_size_for(1.5)
    cells = expand(write_tiny_sweeps(tmp_path / "s.yaml", [0.5]), "s", "t")
    two = with_world_size(cells, 2)
    assert [c.config.world_size for c in two] == [2, 2]
    assert [c.cell_id for c in two] == [c.config.cell_id() for c in two]
    assert not {c.cell_id for c in two} & {c.cell_id for c in cells}
    with pytest.raises(RstError, match=r"world_size: cell .* not divisible by world_size 3"):
        with_world_size(cells, 3)  # batch 64
    nodes = [{"Alive": True, "Resources": {"CPU": 4.0, "GPU": 2.0}}] * 2
    check_cluster(Placement(1, 1), 4, nodes)  # 4 one-GPU bundles over two nodes
    with pytest.raises(RstError, match=r"needs 5 CPU \+ 5 GPU; Ray has 8 CPU \+ 4 GPU"):
        check_cluster(Placement(1, 1), 5, nodes)

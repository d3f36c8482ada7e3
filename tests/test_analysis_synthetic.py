"""The synthetic store is a valid store: real cells, consistent tables, the real coin draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rstsweep.schedules import parse
from rstsweep.store.rows import unpack_draws
from rstsweep.store.schema import TABLES
from rstsweep.store.store import read_table
from rstsweep.testing.synthetic import small_store

SWEEPS_FILE = Path(__file__).resolve().parents[1] / "sweeps.yaml"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    cells = small_store(
        root, SWEEPS_FILE, sweeps=["constant", "trigonometric"], seeds=2, epochs=3,
        steps_per_epoch=7, unfinished={"trigonometric": 0.5},
    )  # fmt: skip
    return root, cells


def test_tables_follow_the_declared_schemas(built):
    import pyarrow.parquet as pq

    root, _ = built
    for name, schema in TABLES.items():
        parts = list((root / name).glob("part-*.parquet"))
        assert parts or name in ("failures", "probes"), name  # probes: only `plan` writes them
        for part in parts:
            table = pq.read_table(part)
            assert table.schema.names == schema.names, name
            # Parquet keeps timestamp[s] as ms; everything else is exactly the declared type
            assert table.cast(schema).schema.equals(schema, check_metadata=False), name


def test_cells_and_trials_match_the_expanded_grid(built):
    root, cells = built
    trials = read_table(root, "trials")
    recorded = read_table(root, "cells")
    assert set(recorded["cell_id"]) == {c.cell_id for c in cells}
    trig = {c.cell_id for c in cells if c.sweep == "trigonometric"} - {
        c.cell_id for c in cells if c.sweep == "constant"
    }
    done_trig = trig & set(trials["cell_id"])
    assert 0 < len(done_trig) < len(trig)  # half of trigonometric's own cells left pending
    assert set(trials["cell_id"]) <= {c.cell_id for c in cells}


def test_epochs_draws_and_trials_agree(built):
    root, cells = built
    trials = read_table(root, "trials").set_index("cell_id")
    epochs = read_table(root, "epochs")
    draws = read_table(root, "draws").set_index("cell_id")
    by_id = {c.cell_id: c for c in cells}
    assert (epochs.groupby("cell_id")["epoch"].max() == 3).all()
    last = epochs[epochs["epoch"] == 3].set_index("cell_id")
    for cell_id, trial in trials.iterrows():
        assert trial["steps"] == 21 and last.loc[cell_id, "steps"] == 21
        assert last.loc[cell_id, "test_error"] == pytest.approx(trial["test_error"])
        assert last.loc[cell_id, "sa_steps"] == trial["sa_steps"]
        assert last.loc[cell_id, "time_s"] == pytest.approx(trial["train_time_s"])
        x = unpack_draws(draws.loc[cell_id, "bits"], int(draws.loc[cell_id, "steps"]))
        assert x.sum() == trial["sa_steps"]
        assert trial["realized_extra"] == pytest.approx(x.mean())
        config = by_id[cell_id].config
        if config.algorithm != "sgd":  # the real coin stream of (schedule, T, seed)
            assert np.array_equal(x, parse(config.schedule).draws(21, config.seed))
        else:
            assert not x.any()

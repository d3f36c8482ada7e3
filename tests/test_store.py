"""The Parquet store: files read back (also by plain pandas), killed writes, dedupe, compaction."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from rstsweep.core.config import CellConfig
from rstsweep.store import schema
from rstsweep.store.files import part_files as _part_files
from rstsweep.store.location import Location
from rstsweep.store.rows import pack_draws, trial_row, unpack_draws
from rstsweep.store.store import KEYS, Store, read_table
from rstsweep.sweeps.cell import Cell


def part_files(directory: Path) -> list[str]:
    """The visible parts of the local table directory `directory`."""
    return _part_files(Location.parse(directory.parent), directory.name)


def test_empty_store_reads_empty_frames_with_columns(tmp_path: Path, make_cell) -> None:
    store = Store(tmp_path / "nope", read_only=True)
    for name, sch in schema.TABLES.items():
        frame = store.read(name)
        read_time = ["extra_from_coins"] if name == "trials" else []  # added by the reader
        assert frame.empty and list(frame.columns) == sch.names + read_time
    assert store.done_ids() == set()
    assert store.read_heartbeat() is None
    assert not (tmp_path / "nope").exists()  # reading creates nothing
    with pytest.raises(PermissionError):
        store.write_failure(make_cell(), "x")


def test_write_result_reads_back_and_plain_pandas_opens_it(
    tmp_path: Path, make_cell, make_result
) -> None:
    store = Store(tmp_path / "s")
    cell = make_cell("piecewise(a=0, b=0.3)")
    result = make_result(cell, steps=21)
    attempt = store.write_result(cell, result, "ci")
    assert attempt is not None

    trials = store.read("trials")
    assert len(trials) == 1
    row = trials.iloc[0]
    assert row.cell_id == cell.cell_id and row.attempt_id == attempt and row.profile == "ci"
    assert (row.family, row.param_a, row.param_b) == ("piecewise", 0.0, 0.3)
    assert row.steps == 21 and row.sa_steps == int(result.draws.sum())
    assert row.realized_extra == pytest.approx(result.draws.sum() / 21)
    assert row.batch_size == 64 and row.train_subset == 512 and row.seed == 0
    assert json.loads(row.config_json)["schedule"] == "piecewise(a=0, b=0.3)"
    assert set(json.loads(row.versions)) >= {"python", "rstsweep", "torch", "numpy"}

    epochs = store.read("epochs")
    assert epochs["epoch"].tolist() == [1, 2]
    assert epochs["test_error"].tolist() == [0.45, 0.2]
    assert store.draws_of(cell.cell_id).tolist() == result.draws.tolist()

    # Plain pandas, no rstsweep reader: every table is a readable Parquet dataset.
    plain = pd.read_parquet(tmp_path / "s" / "trials")
    assert plain["cell_id"].tolist() == [cell.cell_id]
    assert len(pd.read_parquet(tmp_path / "s" / "epochs")) == 2
    bits = pd.read_parquet(tmp_path / "s" / "draws")["bits"].iloc[0]
    manual = np.unpackbits(np.frombuffer(bits, dtype=np.uint8))[:21].astype(bool)
    assert manual.tolist() == result.draws.tolist()
    # Files carry the declared schema.
    (part,) = part_files(tmp_path / "s" / "trials")
    assert pq.read_schema(part).names == schema.TRIALS.names
    assert read_table(tmp_path / "s", "trials")["cell_id"].tolist() == [cell.cell_id]


def test_pack_unpack_roundtrip_odd_lengths() -> None:
    rng = np.random.default_rng(0)
    for n in (0, 1, 7, 8, 9, 1001):
        draws = rng.random(n) < 0.3
        packed = pack_draws(draws)
        assert len(packed) == (n + 7) // 8
        assert unpack_draws(packed, n).tolist() == draws.tolist()


def test_second_write_of_a_done_cell_is_skipped_or_deduped(
    tmp_path: Path, make_cell, make_result
) -> None:
    store = Store(tmp_path)
    cell = make_cell()
    first = store.write_result(cell, make_result(cell, test_error=0.3), "ci")
    assert store.write_result(cell, make_result(cell, test_error=0.1), "ci") is None
    assert len(part_files(tmp_path / "trials")) == 1
    # Forced second write (a cell re-run after a driver kill): readers still see one row, the first.
    time.sleep(1.05)  # finished_at has 1 s resolution: make "earliest" unambiguous
    second = Store(tmp_path).write_result(
        cell, make_result(cell, test_error=0.1), "ci", skip_if_done=False
    )
    assert second not in (None, first)
    assert len(pd.read_parquet(tmp_path / "trials")) == 2  # raw: both files are there
    trials = store.read("trials")
    assert trials["attempt_id"].tolist() == [first] and trials["test_error"].tolist() == [0.3]
    epochs = store.read("epochs")
    assert len(epochs) == 2 and set(epochs["attempt_id"]) == {first}
    assert store.read("draws")["attempt_id"].tolist() == [first]
    assert store.done_ids() == {cell.cell_id}


def test_orphan_epochs_and_dot_temp_files_are_invisible(
    tmp_path: Path, make_cell, make_result
) -> None:
    store = Store(tmp_path)
    done, orphan = make_cell("constant(0.2)"), make_cell("constant(0.7)")
    store.write_result(done, make_result(done), "ci")
    # A kill between the epochs/draws writes and the trials row: write them by hand.
    store._write("epochs", [{"cell_id": orphan.cell_id, "attempt_id": "dead", "epoch": 1}])
    store._write("draws", [{"cell_id": orphan.cell_id, "attempt_id": "dead", "steps": 0}])
    # A kill mid-file: garbage under a dot name.
    (tmp_path / "trials" / ".tmp-part-x.parquet").write_bytes(b"PAR1 half a file")
    assert store.read("trials")["cell_id"].tolist() == [done.cell_id]
    assert set(store.read("epochs")["cell_id"]) == {done.cell_id}
    assert store.read("draws")["cell_id"].tolist() == [done.cell_id]
    assert store.done_ids() == {done.cell_id}
    assert pd.read_parquet(tmp_path / "trials")["cell_id"].tolist() == [done.cell_id]


KILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from factories import make_cell, make_result
    import rstsweep.store.store as st

    mode = sys.argv[2]
    real_write = st.Store._write
    real_replace = os.replace

    def write(self, name, rows):
        if mode == "before-trials" and name == "trials":
            os.kill(os.getpid(), signal.SIGKILL)
        return real_write(self, name, rows)

    def replace(src, dst):
        if mode == "mid-file":
            os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)

    import rstsweep.store.location as loc
    real_delete = loc.Location.delete

    def delete(self, path):
        # compaction: die after the merged file exists and one old file is gone
        loc.Location.delete = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
        return real_delete(self, path)

    store = st.Store(sys.argv[1])
    if mode == "compact":
        loc.Location.delete = delete
        store.compact(["trials", "epochs"])
    else:
        st.Store._write = write
        st.os.replace = replace
        cell = make_cell("constant(0.4)", seed=7)
        store.write_result(cell, make_result(cell), "ci")
    """
)


def _run_killed(store_dir: Path, mode: str) -> None:
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent))
    proc = subprocess.run([sys.executable, "-c", script, str(store_dir), mode], timeout=60)
    assert proc.returncode == -signal.SIGKILL


def test_process_killed_before_trials_row_leaves_readers_clean(
    tmp_path: Path, make_cell, make_result
) -> None:
    store = Store(tmp_path)
    survivor = make_cell("constant(0.1)")
    store.write_result(survivor, make_result(survivor), "ci")
    _run_killed(tmp_path, "before-trials")
    assert len(part_files(tmp_path / "epochs")) == 2  # the killed writer's epochs file is there...
    assert store.read("trials")["cell_id"].tolist() == [survivor.cell_id]
    assert set(store.read("epochs")["cell_id"]) == {survivor.cell_id}  # ...but invisible
    assert len(store.read("draws")) == 1
    # The killed cell is pending; writing it again makes it visible exactly once.
    again = make_cell("constant(0.4)", seed=7)
    store.write_result(again, make_result(again), "ci")
    assert sorted(store.read("trials")["cell_id"]) == sorted([survivor.cell_id, again.cell_id])
    assert len(store.read("epochs")) == 4


def test_process_killed_mid_file_leaves_only_a_dot_file(tmp_path: Path) -> None:
    _run_killed(tmp_path, "mid-file")
    leftovers = [p.name for p in (tmp_path / "epochs").iterdir()]
    assert len(leftovers) == 1 and leftovers[0].startswith(".tmp-")
    assert part_files(tmp_path / "epochs") == []
    assert Store(tmp_path).read("epochs").empty
    assert pd.read_parquet(tmp_path / "epochs").empty  # pandas ignores the dot file as well


def _fill_store(store: Store, n: int) -> list[Cell]:
    from factories import make_cell, make_result

    cells = [make_cell(f"constant(0.{i + 1})", seed=i) for i in range(n)]
    for cell in cells:
        store.write_result(cell, make_result(cell), "ci")
    store.write_failure(cells[0], "boom")
    store.record_cells(cells, "ci")
    return cells


def test_compact_merges_files_and_keeps_every_row(tmp_path: Path) -> None:
    store = Store(tmp_path)
    cells = _fill_store(store, 4)
    before = {name: store.read(name) for name in schema.TABLES}
    report = store.compact()
    assert report["trials"] == (4, 1) and report["epochs"] == (4, 1)
    assert report["failures"] == (1, 1)
    for name in schema.TABLES:
        assert len(part_files(tmp_path / name)) <= 1
        after = store.read(name)
        key = ["cell_id", *(["epoch"] if name == "epochs" else [])]
        if "cell_id" not in after.columns:  # e.g. probes: keyed by setting, not by cell
            key = KEYS[name]
        pd.testing.assert_frame_equal(
            after.sort_values(key).reset_index(drop=True),
            before[name].sort_values(key).reset_index(drop=True),
        )
    assert store.done_ids() == {c.cell_id for c in cells}
    assert len(pd.read_parquet(tmp_path / "trials")) == 4


def test_compact_killed_midway_leaves_no_duplicates(tmp_path: Path) -> None:
    store = Store(tmp_path)
    cells = _fill_store(store, 3)
    _run_killed(tmp_path, "compact")
    # merged file + the old files not yet removed: the raw data has duplicates...
    assert len(pd.read_parquet(tmp_path / "trials")) > 3
    # ...readers do not
    trials = store.read("trials")
    assert sorted(trials["cell_id"]) == sorted(c.cell_id for c in cells)
    assert len(store.read("epochs")) == 6
    assert store.done_ids() == {c.cell_id for c in cells}
    # and a second compaction finishes the job
    store.compact()
    assert len(pd.read_parquet(tmp_path / "trials")) == 3
    assert len(pd.read_parquet(tmp_path / "epochs")) == 6


def test_record_cells_writes_only_new_membership(tmp_path: Path, make_cell) -> None:
    store = Store(tmp_path)
    cells = [make_cell(f"constant(0.{i})") for i in range(1, 4)]
    assert store.record_cells(cells, "ci") == 3
    assert store.record_cells(cells, "ci") == 0  # re-running a sweep adds no file
    assert len(part_files(tmp_path / "cells")) == 1
    other = Cell("summary", "constant", "x", 0.1, cells[0].config, cells[0].cell_id)
    assert store.record_cells([*cells, other], "ci") == 1
    frame = store.read("cells")
    assert len(frame) == 4
    assert frame[frame.cell_id == cells[0].cell_id]["sweep"].tolist() == ["constant", "summary"]


def test_heartbeat_roundtrip_is_atomic_json(tmp_path: Path) -> None:
    store = Store(tmp_path)
    store.write_heartbeat({"sweep": "constant", "running": ["a", "b"], "started_at": 5.0})
    beat = store.read_heartbeat()
    assert beat["pid"] == os.getpid() and beat["running"] == ["a", "b"]
    assert beat["updated_at"] == pytest.approx(time.time(), abs=5)
    assert [p.name for p in tmp_path.iterdir()] == ["heartbeat.json"]  # no temp left behind
    store.clear_heartbeat()
    assert store.read_heartbeat() is None


def test_trial_row_matches_schema_and_sgd_has_no_params(tmp_path: Path, make_result) -> None:
    config = CellConfig(algorithm="sgd", schedule="constant(0.7)")
    cell = Cell("baselines", "sgd", "SGD", 0.0, config, config.cell_id())
    row = trial_row(cell, make_result(cell), "paper")
    assert set(row) == set(schema.TRIALS.names)
    assert (row["family"], row["param_a"], row["param_b"]) == ("constant", 0.0, None)
    assert row["sa_steps"] == 0 and row["algorithm"] == "sgd"

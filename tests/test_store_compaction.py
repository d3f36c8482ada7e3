"""Compaction by the live writer and the read cache: processes really SIGKILLed mid-compaction lose
and duplicate nothing; `status` of a compacted and an uncompacted store agree row for row; the
cache returns the frames a fresh reader gets and notices a part added or merged away."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from rstsweep.store import compaction
from rstsweep.store.files import part_files
from rstsweep.store.store import Store
from rstsweep.sweeper.status import collect_status
from rstsweep.testing.synthetic import grid_cells, synthetic_results

TESTS = Path(__file__).parent

# Writes cells 0..N-1 the way the run does (write_result, then compact_if_due with small
# thresholds) and prints each cell_id once its write returned. KILL_AT = k > 0: SIGKILL itself at
# the k-th file operation of a compaction (a merged part written, an input deleted); k = 0: run on
# (the parent kills it at a random moment).
WRITER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from factories import make_cell, make_result
    import rstsweep.store.compaction as comp
    from rstsweep.store.store import Store

    root, kill_at, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    comp.COMPACT_AFTER, comp.COMPACT_FANOUT = 3, 2
    ops = [0]

    def counted(fn):
        def wrapper(*args, **kwargs):
            ops[0] += 1
            if ops[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return fn(*args, **kwargs)
        return wrapper

    comp.write_part = counted(comp.write_part)
    real_merge = comp.merge

    def merge(location, name, files, level):
        location.delete = counted(type(location).delete.__get__(location))
        try:
            return real_merge(location, name, files, level)
        finally:
            del location.delete

    comp.merge = merge
    store = Store(root)
    for i in range(n):
        cell = make_cell(f"constant(0.{{i % 9 + 1}})", seed=i)
        store.write_result(cell, make_result(cell, steps=8, seed=i), "ci")
        print(cell.cell_id, flush=True)
        store.compact_if_due()
    store.compact()
    print("finished", flush=True)
    """
)
N = 14


def _writer(root: Path, kill_at: int) -> subprocess.Popen:
    script = WRITER.format(tests=str(TESTS))
    cmd = [sys.executable, "-c", script, str(root), str(kill_at), str(N)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def _check_whole(root: Path, written: list[str]) -> None:
    """Every cell whose write returned is there once, with both epochs and its draws; nothing
    else is (a cell killed mid-write is invisible); a second compaction leaves raw files clean."""
    store = Store(root)
    trials = store.read("trials")
    assert trials["cell_id"].is_unique
    assert set(written) <= set(trials["cell_id"])
    assert len(trials) <= len(written) + 1  # at most the cell whose print the kill cut off
    epochs = store.read("epochs")
    assert epochs.groupby("cell_id").size().to_dict() == dict.fromkeys(trials["cell_id"], 2)
    assert sorted(store.read("draws")["cell_id"]) == sorted(trials["cell_id"])
    assert store.done_ids() == set(trials["cell_id"])
    before = {name: store.read(name) for name in ("trials", "epochs", "draws")}
    store.compact()
    for name, frame in before.items():
        raw = pd.read_parquet(root / name)  # plain pandas: no dedupe
        assert len(part_files(store.location, name)) == 1
        key = compaction.KEYS[name]
        assert not raw.duplicated(subset=key).any()
        pd.testing.assert_frame_equal(
            Store(root).read(name).sort_values(key).reset_index(drop=True),
            frame.sort_values(key).reset_index(drop=True),
        )


@pytest.mark.parametrize("kill_at", [1, 2, 4, 7, 11, 16])
def test_compaction_killed_at_a_file_operation_loses_and_duplicates_nothing(
    tmp_path: Path, kill_at: int
) -> None:
    proc = _writer(tmp_path, kill_at)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    written = [line for line in out.split() if line != "finished"]
    assert written  # killed inside a compaction, after some cells were written
    _check_whole(tmp_path, written)


def test_compaction_killed_at_random_moments(tmp_path: Path) -> None:
    rng = random.Random(19)
    for round_ in range(3):
        root = tmp_path / f"r{round_}"
        proc = _writer(root, 0)
        time.sleep(rng.uniform(1.0, 4.0))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=120)
        written = [line for line in out.split() if line != "finished"]
        if root.exists():
            _check_whole(root, written)


def test_live_compaction_keeps_parts_few_and_rows_whole(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(compaction, "COMPACT_AFTER", 4)
    monkeypatch.setattr(compaction, "COMPACT_FANOUT", 2)
    from factories import make_cell, make_result

    store = Store(tmp_path)
    cells = [make_cell(f"constant(0.{i % 9 + 1})", seed=i) for i in range(20)]
    merges = 0
    for i, cell in enumerate(cells):
        store.write_result(cell, make_result(cell, steps=8, seed=i), "ci")
        merges += store.compact_if_due()
        levels = [compaction.level_of(p) for p in part_files(store.location, "trials")]
        assert levels.count(0) < 4 and all(levels.count(k) < 2 for k in set(levels) - {0})
    assert merges > 0
    assert sorted(Store(tmp_path).read("trials")["cell_id"]) == sorted(c.cell_id for c in cells)
    assert len(Store(tmp_path).read("epochs")) == 40
    assert len(pd.read_parquet(tmp_path / "trials")) == 20  # plain pandas still reads it


def test_compaction_drops_attempts_superseded_by_a_rerun_and_keeps_unfinished_ones(
    tmp_path: Path,
) -> None:
    """A run killed between a cell's epochs/draws parts and its trials row leaves an attempt no
    reader sees; once the cell is run again, compaction drops it from the raw Parquet, while the
    rows of a cell with no trials row yet (possibly still being written) stay."""
    from factories import make_cell, make_result
    from rstsweep.store.rows import draws_row, epoch_rows

    store = Store(tmp_path)
    rerun, pending = make_cell("constant(0.5)", seed=1), make_cell("constant(0.3)", seed=2)
    for cell in (rerun, pending):  # killed: epochs and draws written, no trials row
        result = make_result(cell, steps=8, seed=0)
        store._write("epochs", epoch_rows(cell.cell_id, "dead", result))
        store._write("draws", [draws_row(cell.cell_id, "dead", result.draws, result.signals)])
    seen_before = Store(tmp_path).read("epochs")
    attempt = store.write_result(rerun, make_result(rerun, steps=8, seed=1), "ci")
    store.compact()
    for table in ("epochs", "draws"):
        raw = pd.read_parquet(tmp_path / table)
        by_cell = raw.groupby("cell_id")["attempt_id"].unique().map(sorted).to_dict()
        assert by_cell == {rerun.cell_id: [attempt], pending.cell_id: ["dead"]}, table
    assert len(pd.read_parquet(tmp_path / "epochs")) == 2 * 2  # two epochs per attempt kept
    assert seen_before.empty  # the dead attempts were never visible to a reader
    after = Store(tmp_path).read("epochs")
    assert set(after["attempt_id"]) == {attempt}


def _run_layout_store(root: Path, sweeps_file: Path) -> None:
    """A few sweeps written one cell at a time (no compaction), some cells left pending."""
    profile = {"seeds": [0, 1], "models": ["resnet18"], "datasets": ["cifar10"]}
    profile |= {"overrides": {"epochs": 3}}
    cells = grid_cells(sweeps_file, "small", ["constant", "policies"], profile_spec=profile)
    store = Store(root)
    store.record_cells(cells, "small")
    for i, (cell, result) in enumerate(synthetic_results(cells, steps_per_epoch=5)):
        if i % 4 == 3:
            store.write_failure(cell, "RuntimeError: boom")
        else:
            store.write_result(cell, result, "small")


def test_status_of_compacted_and_uncompacted_stores_agree_row_for_row(
    tmp_path: Path, sweeps_file: Path
) -> None:
    loose, merged = tmp_path / "loose", tmp_path / "merged"
    _run_layout_store(loose, sweeps_file)
    shutil.copytree(loose, merged)
    assert Store(merged).compact()["trials"][1] == 1
    assert len(part_files(Store(loose).location, "trials")) > 10
    a, b = collect_status(loose), collect_status(merged)
    assert [s.sweep for s in a.sweeps] == [s.sweep for s in b.sweeps] == ["constant", "policies"]
    for sa, sb in zip(a.sweeps, b.sweeps, strict=True):
        rows_a = [(g.group, g.counts, g.passes, g.steps, g.train_time_s) for g in sa.groups]
        rows_b = [(g.group, g.counts, g.passes, g.steps, g.train_time_s) for g in sb.groups]
        assert rows_a == rows_b
        assert sa.total().counts["failed"] > 0 and sa.total().counts["done"] > 0
        pd.testing.assert_frame_equal(sa.failures, sb.failures)
    assert (a.trials, a.passes, a.steps) == (b.trials, b.passes, b.steps)
    # each group's done counts and steps, recomputed here from the raw cells and trials rows
    trials = pd.read_parquet(merged / "trials").set_index("cell_id")
    cells = pd.read_parquet(merged / "cells")
    for sweep in a.sweeps:
        for g in sweep.groups:
            ids = set(cells[(cells["sweep"] == sweep.sweep) & (cells["group"] == g.group)].cell_id)
            done = trials[trials.index.isin(ids)]
            assert g.counts["done"] == len(done) and g.steps == done["steps"].sum()
            assert g.total == len(ids)


def test_read_cache_returns_fresh_frames_and_sees_new_parts(
    tmp_path: Path, monkeypatch, make_cell, make_result
) -> None:
    import rstsweep.store.store as store_module

    reads: list[str] = []
    real = store_module.read_files

    def counting(location, files, schema, columns=None):
        reads.append(len(files))
        return real(location, files, schema, columns)

    monkeypatch.setattr(store_module, "read_files", counting)
    store = Store(tmp_path)
    cells = [make_cell(f"constant(0.{i})", seed=i) for i in range(1, 4)]
    for cell in cells[:2]:
        store.write_result(cell, make_result(cell), "ci")
    reader = Store(tmp_path, read_only=True)
    first = reader.read("trials")
    reads.clear()
    for _ in range(3):
        again = reader.read("trials")
        pd.testing.assert_frame_equal(again, first)
    assert reads == []  # same listing: no read
    again["test_error"] = -1.0  # a caller changing its frame does not change the cache
    assert (reader.read("trials")["test_error"] > 0).all()
    pd.testing.assert_frame_equal(reader.read("epochs"), Store(tmp_path).read("epochs"))

    store.write_result(cells[2], make_result(cells[2]), "ci")  # a new part: the cache is stale
    assert len(reader.read("trials")) == 3 and len(reader.read("epochs")) == 6
    store.compact()  # parts merged away: a new listing, the same rows
    pd.testing.assert_frame_equal(
        reader.read("epochs").sort_values(["cell_id", "epoch"]).reset_index(drop=True),
        Store(tmp_path).read("epochs").sort_values(["cell_id", "epoch"]).reset_index(drop=True),
    )
    assert sorted(reader.read("trials")["cell_id"]) == sorted(c.cell_id for c in cells)

"""A store that defends itself: unreadable part files give one line naming the file (exit 2) in
every command that reads them, `rstsweep verify [--repair]` finds and quarantines bad files and
incomplete cells (nothing deleted), and a second `run` refuses while another run is live."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factories import make_cell, make_result
from rstsweep.errors import RstError
from rstsweep.store.files import CorruptPartError
from rstsweep.store.store import Store, open_store
from rstsweep.store.verify import verify_store
from rstsweep.sweeper.guard import claim, refuse_if_live, release
from tiny_sweeps import write_tiny_sweeps

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps.yaml"


def _three_cells(root: Path) -> tuple[Store, list]:
    store = Store(root)
    cells = [make_cell(f"constant({a})", seed=1) for a in (0.2, 0.4, 0.6)]
    store.record_cells(cells, "ci")
    for cell in cells:
        store.write_result(cell, make_result(cell), "ci")
    return store, cells


def _part_of(root: Path, table: str, cell_id: str) -> Path:
    """The part file of `table` that holds `cell_id` (each write_result writes its own)."""
    import pyarrow.parquet as pq

    for path in sorted((root / table).glob("part-*.parquet")):
        if cell_id in pq.read_table(path, columns=["cell_id"]).column("cell_id").to_pylist():
            return path
    raise AssertionError(f"no {table} part holds {cell_id}")


def _truncate(path: Path) -> bytes:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a bad copy / a full disk
    return data[: len(data) // 2]


def test_every_reading_command_names_the_truncated_file(tmp_path, cli_main):
    _store, cells = _three_cells(tmp_path / "st")
    bad = _part_of(tmp_path / "st", "trials", cells[1].cell_id)
    _truncate(bad)
    sweeps = write_tiny_sweeps(tmp_path / "s.yaml", [0.5])
    s = str(tmp_path / "st")
    commands = [
        ["status", "-s", s],
        ["status", "constant", "-s", s],
        ["figures", "-s", s, "-o", str(tmp_path / "f")],
        ["tables", "-s", s],
        ["plan", "constant", "-p", "ci", "-f", str(SWEEPS), "-s", s],
        ["compact", "-s", s],
        ["run", "s", "-p", "t", "-f", str(sweeps), "-s", s, "--no-progress"],
    ]
    for args in commands:
        code, out, err = cli_main(*args)
        lines = err.strip().splitlines()
        assert code == 2, (args, out, err)
        assert len(lines) == 1 and lines[0].startswith("rstsweep: error: "), (args, err)
        assert str(bad) in lines[0] and "verify --repair" in lines[0], (args, err)
    assert bad.exists()  # nothing was removed or rewritten by any of them
    assert len(list((tmp_path / "st" / "trials").glob("part-*"))) == 3


def test_verify_clean_store_exit_0(tmp_path, cli_main):
    _three_cells(tmp_path / "st")
    code, out, _ = cli_main("verify", "-s", str(tmp_path / "st"))
    assert code == 0
    assert "10 part files, 3 trials rows checked" in out  # 3 x (trials, epochs, draws) + cells
    assert "ok: no problems found" in out


def test_verify_repair_quarantines_a_bad_epochs_part_and_its_cell_is_pending(tmp_path, cli_main):
    root = tmp_path / "st"
    _store, cells = _three_cells(root)
    victim = cells[1].cell_id
    bad = _part_of(root, "epochs", victim)
    trials_part = _part_of(root, "trials", victim)
    kept_bytes = _truncate(bad)

    code, out, _ = cli_main("verify", "-s", str(root))
    assert code == 1
    assert f"unreadable: {bad}:" in out
    assert f"incomplete cell {victim}: " in out and "no epochs rows" in out
    assert bad.exists()  # without --repair nothing moves

    code, out, _ = cli_main("verify", "--repair", "-s", str(root))
    assert code == 0, out
    quarantined = root / ".quarantine" / "epochs" / bad.name
    assert quarantined.read_bytes() == kept_bytes and not bad.exists()
    assert (root / ".quarantine" / "trials" / trials_part.name).exists()  # moved, not deleted
    assert f"1 cells pending again (the next run trains them): {victim}" in out
    fresh = Store(root, read_only=True)
    assert fresh.done_ids() == {cells[0].cell_id, cells[2].cell_id}
    assert sorted(fresh.read("epochs")["cell_id"].unique()) == sorted(
        [cells[0].cell_id, cells[2].cell_id]
    )
    code, out, _ = cli_main("verify", "-s", str(root))
    assert code == 0 and "ok: no problems found" in out


def test_repair_keeps_the_good_rows_of_a_shared_trials_part(tmp_path):
    root = tmp_path / "st"
    store, cells = _three_cells(root)
    store.compact(["trials"])  # one trials part with all three rows
    victim = cells[0].cell_id
    (_part_of(root, "draws", victim)).unlink()  # an incomplete copy: the draws part is missing
    report = verify_store(Store(root), repair=True)
    assert [cid for cid, _ in report.bad_rows] == [victim]
    assert "no draws row" in report.bad_rows[0][1]
    assert report.pending_again == [victim]
    assert Store(root).done_ids() == {cells[1].cell_id, cells[2].cell_id}
    assert len(list((root / ".quarantine" / "trials").glob("part-*"))) == 1


def test_unreadable_trials_part_reports_the_cells_it_held(tmp_path):
    root = tmp_path / "st"
    _store, cells = _three_cells(root)
    victim = cells[2].cell_id
    _truncate(_part_of(root, "trials", victim))
    report = verify_store(Store(root), repair=True)
    assert len(report.bad_files) == 1 and report.pending_again == [victim]
    assert Store(root).done_ids() == {cells[0].cell_id, cells[1].cell_id}


def test_open_store_owns_the_no_store_error(tmp_path):
    with pytest.raises(RstError, match=r"^nowhere: no result store here \(pass --store DIR\)$"):
        open_store("nowhere", must_exist=True)
    assert open_store(tmp_path / "new", must_exist=False).done_ids() == set()
    with pytest.raises(RstError, match=r"unsupported scheme ftp://"):
        open_store("ftp://host/x", must_exist=False)


def test_corrupt_part_error_is_one_line(tmp_path):
    _store, cells = _three_cells(tmp_path / "st")
    bad = _part_of(tmp_path / "st", "draws", cells[0].cell_id)
    bad.write_bytes(b"PAR1 this is not parquet PAR1")
    with pytest.raises(CorruptPartError) as info:
        Store(tmp_path / "st").read("draws")
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


# ----------------------------------------------------------------------------- live-run guard


def test_second_run_refuses_while_a_live_run_holds_the_store(tmp_path, cli_main):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        store = Store(tmp_path / "st")
        store.write_heartbeat({"pid": other.pid, "sweep": "s", "profile": "t", "running": []})
        sweeps = write_tiny_sweeps(tmp_path / "s.yaml", [0.5])
        args = ["run", "s", "-p", "t", "-f", str(sweeps), "-s", str(tmp_path / "st")]
        code, out, err = cli_main(*args)
        assert code == 2 and out == ""
        (line,) = err.strip().splitlines()
        host = socket.gethostname()
        assert f"another run is live on this store (pid {other.pid} on {host}" in line
        assert "--force" in line
        assert not (tmp_path / "st" / "cells").exists()  # refused before touching the store
        refuse_if_live(store, force=True)  # --force passes the guard
    finally:
        other.kill()
        other.wait()
    refuse_if_live(store, force=False)  # its pid is gone: the heartbeat is a dead run's


def test_a_claimed_store_refuses_others_and_is_released(tmp_path):
    store = Store(tmp_path / "st")
    claim(store, sweep="s", profile="t", force=False)
    beat = store.read_heartbeat()
    assert beat["pid"] == os.getpid() and beat["state"] == "starting"
    with pytest.raises(RstError, match=f"pid {os.getpid()} on"):
        claim(Store(tmp_path / "st"), sweep="s", profile="t", force=False)
    release(store)
    assert store.read_heartbeat() is None
    # a stale heartbeat of another host (older than the staleness limit) does not block, and
    # release leaves another run's heartbeat alone
    store.write_heartbeat({"pid": 1, "host": "elsewhere", "updated_at": time.time() - 3600})
    refuse_if_live(store, force=False)
    release(store)
    assert store.read_heartbeat()["host"] == "elsewhere"

"""Driver pieces without Ray: request validation, the fit check, progress counts/ETA/heartbeat,
the result payload round trip, the event log, the summary."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pytest

from rstsweep.core.result import EpochRecord, TrainResult
from rstsweep.errors import RstError
from rstsweep.sweeper.driver import SweepSummary, unique_cells, with_absolute_data_dir
from rstsweep.sweeper.live import EventLog, SweepProgress, read_events
from rstsweep.sweeper.options import Placement
from rstsweep.sweeper.resources import check_fits, validate_request


@pytest.mark.parametrize(
    ("request_", "kwargs", "message"),
    [
        (Placement(0, 0), {}, "--cpus-per-trial: 0 must be > 0"),
        (Placement(1, -0.5), {}, "--gpus-per-trial: -0.5 must be >= 0"),
        (Placement(1, 1.5), {}, "--gpus-per-trial: 1.5 must be a fraction <= 1"),
        (Placement(1, 0, slots=0), {}, "--max-concurrent: 0 must be >= 1"),
        (Placement(1, 0), {"max_failures": -1}, "--max-failures: -1 must be >= 0"),
        (
            Placement(4, 0),
            {"local_cpus": 2, "local_gpus": 0},
            "resources: a trial asks for 4 CPU + 0 GPU but this machine has at most 2 CPU + 0 GPU",
        ),
        (
            Placement(1, 0.25),
            {"local_cpus": 2, "local_gpus": 0},
            "resources: a trial asks for 1 CPU + 0.25 GPU but this machine has at most 2 CPU + 0",
        ),
    ],
)
def test_validate_request_refuses_with_the_option_named(request_, kwargs, message):
    with pytest.raises(RstError) as info:
        validate_request(request_, **kwargs)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_validate_request_accepts_fractions_and_whole_gpus():
    validate_request(Placement(0.5, 0.25), local_cpus=2, local_gpus=1)
    validate_request(Placement(1, 2), local_cpus=2, local_gpus=2)
    validate_request(Placement(2, 0, slots=3), max_failures=0)  # cluster: unknown nodes


def _node(cpu, gpu, alive=True):
    return {"Alive": alive, "Resources": {"CPU": float(cpu), "GPU": float(gpu), "memory": 1e9}}


def test_check_fits_needs_one_node_holding_the_whole_request():
    nodes = [_node(2, 1), _node(8, 0), _node(16, 8, alive=False)]
    check_fits(Placement(2, 1), nodes)
    check_fits(Placement(8, 0), nodes)
    check_fits(Placement(0.1 + 0.2, 0.1 * 3), [_node(0.3, 0.3)])  # float noise still fits
    # 2 GPUs exist in total only on a dead node; 4 CPUs + 1 GPU exist on no single alive node
    for request in (Placement(1, 2), Placement(4, 1)):
        with pytest.raises(RstError, match=r"^resources: .* any node of the Ray cluster .*2 nodes"):
            check_fits(request, nodes)


class _FakeStore:
    def __init__(self):
        self.beats, self.cleared = [], 0

    def write_heartbeat(self, state):
        self.beats.append(state)

    def clear_heartbeat(self):
        self.cleared += 1


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_progress_counts_eta_and_heartbeat():
    clock, store = _Clock(), _FakeStore()
    # "shared" belongs to two groups (an endpoint both grids include); "old" was done before
    members = [
        ("a", "c1"),
        ("a", "c2"),
        ("a", "shared"),
        ("b", "shared"),
        ("b", "c3"),
        ("b", "old"),
    ]
    progress = SweepProgress(
        members, {"old"}, sweep="s", profile="p", store=store, heartbeat_every=5, clock=clock
    )
    with progress:
        assert progress.eta_s() is None  # nothing measured yet
        progress.start("c1")
        progress.start("c2")
        clock.now += 4
        progress.epoch("c1", 1, 4)  # 1 of 4 epochs in 4 s -> 16 s per cell
        # pending: shared, c3 (2 x 16); running: c1, c2 with 12 s left each; 2 running at once
        assert progress.eta_s() == pytest.approx((2 * 16 + 12 + 12) / 2)
        clock.now += 6
        progress.finish("c1")  # took 10 s
        progress.fail("c2", "boom")
        progress.start("shared")
        counts = progress.counts()
        assert counts["a"] == {"done": 1, "running": 1, "failed": 1, "pending": 0}
        assert counts["b"] == {"done": 1, "running": 1, "failed": 0, "pending": 1}
        assert counts["total"] == {"done": 2, "running": 1, "failed": 1, "pending": 1}
        # from the finished cell: 10 s per cell; c3 pending, shared running since 0 s
        assert progress.eta_s() == pytest.approx(10 + 10)
        beat = store.beats[-1]
        assert beat["running"] == ["shared"]
        assert beat["counts"] == counts["total"]
        assert beat["groups"]["a"]["failed"] == 1
        n = len(store.beats)
        progress.tick()  # not due yet
        clock.now += 5
        progress.tick()
        assert len(store.beats) == n + 1
        text = _render_text(progress)
        # at t=15: c3 pending (10 s) + shared 5 s into its 10 s, one running -> 15 s to go
        assert "s (p): 2/5 cells done · elapsed 0:15 · ETA 0:15" in text
        assert [line.split() for line in text.splitlines() if line.startswith(("│ a", "│ b"))] == [
            ["│", "a", "│", "1", "│", "1", "│", "1", "│", "0", "│"],
            ["│", "b", "│", "1", "│", "1", "│", "0", "│", "1", "│"],
        ]
    assert store.cleared == 1


def _render_text(progress: SweepProgress) -> str:
    from rich.console import Console

    console = Console(record=True, width=100, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(progress.render())
    return console.export_text()


def test_result_payload_round_trip():
    from rstsweep.sweeper.trial import payload_to_result, result_to_payload

    draws = np.array([1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 1, 1, 0], dtype=bool)  # 13: not a byte multiple
    records = [EpochRecord(1, 2.0, 0.5, 2.1, 0.6, 0.1, 7, 3, 1.5)]
    result = TrainResult(
        "abc", "ok", None, 13, 7, 0.5, 0.5, 1.5, 0.01, None, 2.0, 0.5, 2.1, 0.6, records, draws
    )
    payload = result_to_payload(result)
    assert isinstance(payload["draws"]["bits"], bytes) and len(payload["draws"]["bits"]) == 2
    back = payload_to_result(payload)
    assert np.array_equal(back.draws, draws)
    assert back.epochs == records
    assert back.sa_step_s is None and back.sa_steps == 7 and back.realized_extra == 7 / 13


def test_event_log_skips_a_torn_line(tmp_path):
    log = EventLog(tmp_path / "run" / "events.jsonl")
    log.log("start", "c1", failures=0)
    log.log("done", "c1", epoch=3)
    with open(tmp_path / "run" / "events.jsonl", "a") as fh:
        fh.write('{"t": 1, "event": "epo')  # a kill mid-write
    events = read_events(tmp_path / "run" / "events.jsonl")
    assert [(e["event"], e["cell_id"]) for e in events] == [("start", "c1"), ("done", "c1")]
    assert events[1]["epoch"] == 3


@dataclass
class _Cell:
    cell_id: str
    group: str


def test_unique_cells_and_summary():
    cells = [_Cell("x", "a"), _Cell("y", "a"), _Cell("x", "b")]
    assert {k: v.group for k, v in unique_cells(cells).items()} == {"x": "a", "y": "a"}
    summary = SweepSummary(cells=10, done=3, skipped=4, failed=1, wall_s=2.0)
    assert summary.pending == 2
    assert summary.line() == ("10 cells: 3 run now, 4 already done, 1 failed, 2 pending (2 s)")


def test_data_dir_is_made_absolute_and_keeps_cell_ids(tmp_path, monkeypatch):
    from pathlib import Path

    from rstsweep.sweeps import expand

    sweeps = Path(__file__).resolve().parents[1] / "sweeps.yaml"
    cells = expand(sweeps, "constant", "ci")[:3]
    monkeypatch.chdir(tmp_path)
    moved = with_absolute_data_dir(cells, Path("data"))
    assert [c.cell_id for c in moved] == [c.cell_id for c in cells]
    assert [c.config.cell_id() for c in moved] == [c.cell_id for c in cells]
    assert {c.config.data_dir for c in moved} == {str(tmp_path / "data")}
    assert with_absolute_data_dir(cells, None) == cells  # no data_dir anywhere: unchanged


def test_longest_first_orders_by_seconds_then_passes_at_the_median_rate():
    from rstsweep.sweeper.plan import CellEstimate, longest_first

    pending = {
        "a": CellEstimate("g", 10.0, 100.0),  # 0.10 s per pass
        "b": CellEstimate("g", None, 300.0),  # passes only: 300 × median(.1, .2, .1) = 30 s
        "c": CellEstimate("h", 40.0, 200.0),  # 0.20 s per pass
        "d": CellEstimate("h", None, 50.0),  # 5 s
        "e": CellEstimate("h", 10.0, 100.0),  # 0.10 s per pass; ties keep the given order
    }
    assert longest_first(pending) == ["c", "b", "a", "e", "d"]
    assert longest_first({"x": CellEstimate("g", None, 1), "y": CellEstimate("g", None, 2)}) == [
        "y",
        "x",
    ]


def test_plan_says_the_launch_order(cli, tmp_path):
    from tiny_sweeps import write_tiny_sweeps

    path = write_tiny_sweeps(tmp_path / "s.yaml", [0.2, 0.9])
    result = cli(
        "plan", "s", "--file", path, "--profile", "t", "--store", tmp_path / "st", "--no-probe"
    )
    assert result.exit_code == 0, result.stderr
    assert "launch order, longest cell first (by expected passes): constant, sgd" in result.stdout

"""Live state of one `rstsweep run`: per-cell states, per-group counts, ETA, the rich display, the
store heartbeat and the run's event log.

Pure Python + rich (no ray): the driver's Tune callback feeds it events (start, epoch, retry,
done, failed) from the driver thread, and it turns them into (1) a rich Live table on stderr,
(or, when stderr is not a terminal, plain log lines through `sweeper.loglines`),
(2) `heartbeat.json` in the store, rewritten at every change and every few seconds, for
`rstsweep status`, and (3) `events.jsonl`, one JSON line per event, which is how a crash and its
resume can be inspected afterwards (which epoch did the retried attempt start at, which node and
GPU ran a trial).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from rstsweep.core.format import format_clock
from rstsweep.sweeper.loglines import LogLines

if TYPE_CHECKING:
    from rich.console import Group
    from rich.live import Live

    from rstsweep.store.store import Store

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
# The states of a cell, in the order every table shows them (live display and `rstsweep status`).
STATES = (DONE, RUNNING, FAILED, PENDING)


@dataclass
class CellState:
    """What the driver knows of one cell during this run."""

    state: str = PENDING
    started: float | None = None  # first start in this run (retries keep it)
    finished: float | None = None
    epoch: int = 0
    epochs: int | None = None
    failures: int = 0
    error: str | None = None


class EventLog:
    """Append-only JSON lines (`t`, `event`, `cell_id`, ...): the run's history."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def log(self, event: str, cell_id: str | None = None, **fields: object) -> None:
        if self.path is None:
            return
        line = {"t": time.time(), "event": event, "cell_id": cell_id, **fields}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(line, default=str) + "\n")


def read_events(path: Path) -> list[dict[str, object]]:
    """The events of a run log (a torn last line, from a kill mid-write, is skipped)."""
    events = []
    for line in Path(path).read_text().splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events


class SweepProgress:
    """Tracks the cells of a run and shows/publishes their state.

    `members` is every (group, cell_id) of the sweep, `already_done` the cell_ids the store held
    before this run (shown as done, not run). Thread-safe: rich's refresh thread renders while the
    driver thread updates.
    """

    def __init__(
        self,
        members: Iterable[tuple[str, str]],
        already_done: set[str],
        *,
        sweep: str,
        profile: str,
        store: Store | None = None,
        live: bool = False,
        heartbeat_every: float = 5.0,
        clock: Callable[[], float] = time.time,
        lines: LogLines | None = None,
    ) -> None:
        self.members = list(dict.fromkeys(members))
        self.cells: dict[str, CellState] = {}
        for _, cid in self.members:
            self.cells.setdefault(cid, CellState(state=DONE if cid in already_done else PENDING))
        self.already_done = {cid for cid in self.cells if cid in already_done}
        self.sweep, self.profile, self.store = sweep, profile, store
        self.heartbeat_every = heartbeat_every
        self.clock = clock
        self.started = clock()
        self._last_beat = 0.0
        self._lock = threading.RLock()
        self._live_enabled = live
        self._live: Live | None = None
        self.lines = lines  # plain log lines instead of the live display (stderr not a terminal)
        self._groups: dict[str, list[str]] = {}
        for group, cid in self.members:
            self._groups.setdefault(cid, []).append(group)

    # -- events (called by the driver's Tune callback)

    def start(self, cid: str) -> None:
        with self._lock:
            cell = self.cells[cid]
            cell.state = RUNNING
            cell.started = cell.started or self.clock()
        self._changed()

    def epoch(self, cid: str, epoch: int, epochs: int | None) -> None:
        with self._lock:
            cell = self.cells[cid]
            cell.epoch, cell.epochs = epoch, epochs or cell.epochs
        self.tick()

    def retry(self, cid: str, error: str | None) -> None:
        with self._lock:
            cell = self.cells[cid]
            cell.failures += 1
            cell.error = error
        self._line("retry", cid, failures=cell.failures, error=error)
        self._changed()

    def finish(self, cid: str, status: str = "ok") -> None:
        with self._lock:
            cell = self.cells[cid]
            cell.state, cell.finished = DONE, self.clock()
        self._line("done", cid, status=status)
        self._changed()

    def fail(self, cid: str, error: str) -> None:
        with self._lock:
            cell = self.cells[cid]
            cell.state, cell.finished, cell.error = FAILED, self.clock(), error
        self._line("failed", cid, error=error)
        self._changed()

    def tick(self) -> None:
        """Periodic: rewrite the heartbeat, and write the summary log line, when due."""
        if self.clock() - self._last_beat >= self.heartbeat_every:
            self._beat()
        if self.lines is not None and self.lines.due():
            self._summary_line()

    def _line(self, event: str, cid: str, **fields: object) -> None:
        if self.lines is None:
            return
        cell = self.cells[cid]
        end = cell.finished or self.clock()
        seconds = end - cell.started if cell.started else None
        self.lines.cell(event, cid, self._groups.get(cid, []), seconds, **fields)

    def _summary_line(self) -> None:
        if self.lines is not None:
            self.lines.summary(self.counts()["total"], self.eta_s(), self.clock() - self.started)

    def _changed(self) -> None:
        self._beat()
        if self._live is not None:
            self._live.refresh()

    # -- derived numbers

    def counts(self) -> dict[str, dict[str, int]]:
        """{group: {done, running, failed, pending}} plus the key "total" (distinct cells)."""
        with self._lock:
            out: dict[str, dict[str, int]] = {}
            for group, cid in self.members:
                row = out.setdefault(group, dict.fromkeys(STATES, 0))
                row[self.cells[cid].state] += 1
            total = dict.fromkeys(STATES, 0)
            for cell in self.cells.values():
                total[cell.state] += 1
            out["total"] = total
            return out

    def eta_s(self) -> float | None:
        """Seconds to go: remaining cell-time / cells running at once, from the cells this run
        finished (before any, from the running cells' epoch progress). None if unknown."""
        with self._lock:
            now = self.clock()
            ran = [c for c in self.cells.values() if c.state == DONE and c.started and c.finished]
            running = [c for c in self.cells.values() if c.state == RUNNING and c.started]
            pending = sum(c.state == PENDING for c in self.cells.values())
            if ran:
                per_cell = sum(c.finished - c.started for c in ran) / len(ran)
            else:
                rates = [
                    (now - c.started) * c.epochs / c.epoch for c in running if c.epoch and c.epochs
                ]
                if not rates:
                    return None if running or pending else 0.0
                per_cell = sum(rates) / len(rates)
            left = pending * per_cell + sum(max(0.0, per_cell - (now - c.started)) for c in running)
            return left / max(1, len(running))

    def heartbeat_state(self) -> dict[str, object]:
        counts = self.counts()
        with self._lock:
            running = [cid for cid, c in self.cells.items() if c.state == RUNNING]
        return {
            "sweep": self.sweep,
            "profile": self.profile,
            "started_at": datetime.fromtimestamp(self.started, timezone.utc).isoformat(),
            "running": running,
            "counts": counts.pop("total"),
            "groups": counts,
            "eta_s": self.eta_s(),
            "updated_at": self.clock(),
        }

    def _beat(self) -> None:
        self._last_beat = self.clock()
        if self.store is not None:
            self.store.write_heartbeat(self.heartbeat_state())

    # -- the rich display

    def render(self) -> Group:
        """A headline (done/total, elapsed, ETA) above a table of per-group counts."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        counts = self.counts()
        total = counts.pop("total")
        eta = self.eta_s()
        elapsed = self.clock() - self.started
        headline = Text(
            f"{self.sweep} ({self.profile}): {total[DONE]}/{sum(total.values())} cells done · "
            f"elapsed {format_clock(elapsed)} · ETA {'?' if eta is None else format_clock(eta)}",
            style="bold",
        )
        table = Table(expand=False)
        table.add_column("group")
        for state in STATES:
            table.add_column(state, justify="right")
        for group, row in counts.items():
            table.add_row(group, *(str(row[s]) for s in STATES))
        table.add_row("[b]cells[/b]", *(f"[b]{total[s]}[/b]" for s in STATES))
        return Group(headline, table)

    def __enter__(self) -> SweepProgress:
        self._beat()
        if self.lines is not None:
            total = self.counts()["total"]
            self.lines.line(
                "start",
                sweep=self.sweep,
                profile=self.profile,
                cells=sum(total.values()),
                already_done=total[DONE],
            )
            self._summary_line()
        if self._live_enabled:
            from rich.console import Console
            from rich.live import Live

            self._live = Live(
                get_renderable=self.render,
                console=Console(stderr=True),
                refresh_per_second=1,
                transient=False,
            )
            self._live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.refresh()
            self._live.stop()
            self._live = None
        if self.lines is not None:
            self._summary_line()
            self.lines.line("end", sweep=self.sweep)
        if self.store is not None:
            self.store.clear_heartbeat()

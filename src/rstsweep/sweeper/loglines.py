"""Plain progress lines for a run whose stderr is not a terminal (a cluster job, `> run.log 2>&1`).

The live display (`sweeper.live`) redraws a table, which a log file cannot hold; instead the
run writes one line per event that matters and a summary line every `every_s` seconds. Every line
is `rstsweep <UTC time> <event> key=value ...` (a value with spaces or quotes, e.g. an error
message, is JSON-quoted, which `shlex.split` reads back), so `tail -f run.log`, `grep ' failed '`
or `grep -o 'eta_s=[^ ]*'` follow a run. Times are seconds (`time_s`, `elapsed_s`, `eta_s`).
Events: `start` (the run's cells), `done` and `failed` (one per cell), `retry` (a crashed trial
restarted), `progress` (the periodic summary) and `end`. Pure Python.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import TextIO

DEFAULT_EVERY_S = 30.0


def _value(value: object) -> str:
    """One token: numbers and simple words as they are, other text JSON-quoted (no spaces)."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    if text and all(ch.isalnum() or ch in "-_.:/,=+()[]" for ch in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _seconds(seconds: float | None) -> str | None:
    # whole seconds above a minute, one decimal below: a log reads `time_s=12.3`, `eta_s=5400`
    if seconds is None:
        return None
    return f"{seconds:.0f}" if seconds >= 60 else f"{seconds:.1f}"


class LogLines:
    """Writes the progress lines of one run to `stream` (flushed at every line)."""

    def __init__(
        self,
        stream: TextIO,
        every_s: float = DEFAULT_EVERY_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.stream, self.every_s, self.clock = stream, every_s, clock
        self._last_summary = clock()

    def line(self, event: str, **fields: object) -> None:
        stamp = datetime.fromtimestamp(self.clock(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        parts = [f"{k}={_value(v)}" for k, v in fields.items()]
        self.stream.write(" ".join(["rstsweep", stamp, event, *parts]) + "\n")
        self.stream.flush()

    def cell(
        self,
        event: str,
        cid: str,
        groups: Iterable[str],
        seconds: float | None,
        **fields: object,
    ) -> None:
        """A `done`, `failed` or `retry` line for one cell (its groups comma-joined)."""
        self.line(event, cell=cid, group=",".join(groups), time_s=_seconds(seconds), **fields)

    def summary(self, counts: dict[str, int], eta_s: float | None, elapsed_s: float) -> None:
        """The periodic `progress` line (also forced at the start and end of the run)."""
        self._last_summary = self.clock()
        total = sum(counts.values())
        self.line(
            "progress",
            done=f"{counts.get('done', 0)}/{total}",
            running=counts.get("running", 0),
            pending=counts.get("pending", 0),
            failed=counts.get("failed", 0),
            elapsed_s=_seconds(elapsed_s),
            eta_s=_seconds(eta_s),  # "-" until a cell has finished or reported an epoch
        )

    def due(self) -> bool:
        return self.clock() - self._last_summary >= self.every_s

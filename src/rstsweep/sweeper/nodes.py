"""Lost Ray nodes, said out loud: a Tune callback that notices when a node of the cluster dies.

When a node dies (a preempted VM, a killed raylet), Ray Tune sees its trials fail with a dead
worker and retries them elsewhere from their last epoch checkpoint (`FailureConfig`), but says
nothing about the node. `NodeWatch` remembers the nodes alive when the experiment starts, checks
`ray.nodes()` whenever a trial fails or is retried and every few seconds otherwise, and for each
node that went from alive to dead prints one line on stderr and logs a `node_lost` event in the
run's events.jsonl. Driver side only; ray is imported lazily.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

try:  # subclass Tune's Callback when ray is importable (it always is where a sweep runs)
    from ray.tune import Callback as _Base
except Exception:  # pragma: no cover
    _Base = object

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from rstsweep.sweeper.live import EventLog

CHECK_EVERY_S = 2.0


class NodeWatch(_Base):
    """Report each Ray node lost during the experiment, once."""

    def __init__(self, events: EventLog | None = None, stream: TextIO | None = None) -> None:
        self.events = events
        self.stream = stream
        self.lost: dict[str, str] = {}  # node_id -> address
        self._alive: dict[str, str] | None = None
        self._last = 0.0

    def __getstate__(self) -> dict[str, object]:
        return {"lost": dict(self.lost)}  # Tune pickles callbacks: keep plain data only

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__init__()
        self.lost = state.get("lost", {})

    def _nodes(self) -> dict[str, tuple[bool, str]]:
        import ray

        try:
            return {
                n["NodeID"]: (bool(n.get("Alive")), str(n.get("NodeManagerAddress", "?")))
                for n in ray.nodes()
            }
        except Exception:
            return {}

    def check(self) -> list[str]:
        """Compare with the nodes seen alive before; report the newly dead ones."""
        self._last = time.monotonic()
        nodes = self._nodes()
        if self._alive is None:
            self._alive = {nid: addr for nid, (alive, addr) in nodes.items() if alive}
            return []
        newly = []
        for nid, (alive, addr) in nodes.items():
            if alive:
                self._alive[nid] = addr
            elif nid in self._alive and nid not in self.lost:
                self.lost[nid] = addr
                newly.append(nid)
                self._report(nid, addr)
        return newly

    def _report(self, node_id: str, address: str) -> None:
        line = (
            f"rstsweep: Ray node {address} ({node_id[:8]}) was lost; its trials are retried on "
            "the remaining nodes from their last epoch checkpoint"
        )
        print(line, file=self.stream or sys.stderr, flush=True)
        if self.events is not None:
            self.events.log("node_lost", None, node_id=node_id, address=address)

    # -- Tune callback hooks

    def setup(self, **info: object) -> None:
        self.check()

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: object
    ) -> None:
        self.check()

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: object
    ) -> None:
        self.check()

    def on_step_end(self, iteration: int, trials: list[Trial], **info: object) -> None:
        if time.monotonic() - self._last >= CHECK_EVERY_S:
            self.check()

    def on_experiment_end(self, trials: list[Trial], **info: object) -> None:
        self.check()

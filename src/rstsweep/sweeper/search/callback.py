"""The driver side of `rstsweep search`: the run's `StoreCallback` (the same single writer as
`rstsweep run`), fed by suggestions instead of a fixed cell list.

A search trial reports one cell per seed: its sweep membership (`CELL_KEY`, recorded in the
`cells` table under `<SWEEP>-search`) and, when it was trained now, its result (`FINAL_KEY`,
written through `StoreCallback._write`, once). Prints one line per finished suggestion.

Imported only after Ray is up (module-level `ray.tune` import, via tune_callback).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rstsweep.core.config import CellConfig
from rstsweep.sweeper.live import EventLog
from rstsweep.sweeper.search.objective import CELL_KEY, OBJECTIVE
from rstsweep.sweeper.trackers import TrackerHub, cell_info
from rstsweep.sweeper.trial import FINAL_KEY
from rstsweep.sweeper.tune_callback import PLACEMENT_KEYS, StoreCallback, trial_error
from rstsweep.sweeps import Cell

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from rstsweep.store.store import Store


class _Quiet:
    """Stands in for the sweep's live display (a search has no fixed cell list to show)."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


class SearchCallback(StoreCallback):
    """Tune events of a search -> store rows (cells, trials, epochs, draws), events.jsonl."""

    def __init__(
        self,
        store: Store,
        profile: str,
        events: EventLog,
        total: int,
        trackers: TrackerHub | None = None,
    ) -> None:
        super().__init__({}, store, profile, _Quiet(), events, trackers)  # type: ignore[arg-type]
        self.total, self.finished = total, 0

    def on_trial_start(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: object
    ) -> None:
        self.events.log("start", trial.trial_id, config=_plain(trial.config))

    def on_trial_recover(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: object
    ) -> None:
        self.events.log("retry", trial.trial_id, error=trial_error(trial))

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict, **info: object
    ) -> None:
        meta = result.pop(CELL_KEY, None)
        payload = result.pop(FINAL_KEY, None)
        if meta is None:
            return
        config = CellConfig.model_validate_json(meta["config_json"])
        cell = Cell(meta["sweep"], meta["group"], meta["label"], None, config, config.cell_id())
        self.cells[cell.cell_id] = cell
        self.store.record_cells([cell], self.profile)
        if payload is not None:
            self.trackers.start(cell.cell_id, cell_info(cell, self.profile))
            self._write(cell.cell_id, payload, None, {})

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: object
    ) -> None:
        self.finished += 1
        last = trial.last_result or {}
        text = (
            f"  [{self.finished}/{self.total}] {_plain(trial.config)}: "
            f"error {100 * last.get('test_error', float('nan')):.2f} %, realized Δη "
            f"{last.get('realized_extra', float('nan')):.3f}, objective "
            f"{last.get(OBJECTIVE, float('nan')):.4f}"
        )
        print(text, flush=True)
        where = {k: last.get(k) for k in PLACEMENT_KEYS}
        self.events.log("suggestion", trial.trial_id, objective=last.get(OBJECTIVE), **where)

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: object
    ) -> None:
        self.failed[trial.trial_id] = trial_error(trial) or "trial failed"
        self.events.log("failed", trial.trial_id, error=self.failed[trial.trial_id])


def _plain(config: dict) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(config.items())
    )

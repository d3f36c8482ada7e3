"""Tune's checkpoints of a sweep, kept to the last one per trial without Tune's forced syncs.

With `CheckpointConfig(num_to_keep=1)` Ray Tune 2.60 rewrites the whole experiment state (every
trial's JSON) after each trial checkpoint, to keep its view of the latest checkpoint consistent
(`_ExperimentCheckpointManager.on_trial_checkpoint`): one write per epoch report, each the size of
the experiment, so a paper-sized sweep (thousands of trials) spends the driver's time serialising
trials. rstsweep never restores a Tune experiment (the store is the resume state; a retry only
needs the trial's latest checkpoint), so the driver keeps every checkpoint in Tune's books
(`num_to_keep=None`: no forced syncs; the experiment state is written on Tune's own period) and
`KeepLast` deletes a trial's previous checkpoint directory when the next one is reported. Driver
side only; imported after Ray is up.
"""

from __future__ import annotations

import shutil

from ray import tune
from ray.tune.experiment import Trial


class KeepLast(tune.Callback):
    """Delete a trial's previous checkpoint directory once a newer one is persisted."""

    def __init__(self) -> None:
        self._last: dict[str, str] = {}

    def on_checkpoint(
        self,
        iteration: int,
        trials: list[Trial],
        trial: Trial,
        checkpoint: tune.Checkpoint,
        **info: object,
    ) -> None:
        previous = self._last.get(trial.trial_id)
        self._last[trial.trial_id] = checkpoint.path
        if previous and previous != checkpoint.path:
            shutil.rmtree(previous, ignore_errors=True)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: object
    ) -> None:
        self._last.pop(trial.trial_id, None)  # its directory goes with the run's scratch

    def __getstate__(self) -> dict[str, object]:
        return {"_last": {}}  # pickled into the experiment state: nothing worth keeping

"""The TensorBoard tracker: one event directory per cell with its per-epoch scalars, and the cell
as an HParams session, so TensorBoard's HParams tab compares cells: the cell's fields (its
CellConfig, sweep, group, label) are the hparams, its final test error and realized extra compute
(the realized Δη of Zhao et al.) the metrics `hparams/test_error` and `hparams/realized_extra`.

Written with TensorBoard's public pieces: the event file writer, `summary_v2.hparams_pb` (session
start) and the HParams plugin's `metadata` (session end with its status); TensorBoard computes the
experiment from the sessions (no experiment summary is written, so cells of any sweep mix). Where:
`<tracker dir>/tensorboard/<sweep>/<group>/<label>_<cell>` (the HParams session in its `hparams`
sub-directory), the tracker dir being the store's
directory or, for an object-store root, a local directory (`tracker_runs.tracker_dir`). A resumed
or retried cell writes a new event file into the same directory: one run in TensorBoard. No ray,
no torch.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rstsweep.sweeper.tracker_runs import StoreRoot, tracker_dir

if TYPE_CHECKING:
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

SESSION_DIR = "hparams"
METRIC_TAGS = {"test_error": "hparams/test_error", "realized_extra": "hparams/realized_extra"}
STATUS = {"ok": "STATUS_SUCCESS", "diverged": "STATUS_FAILURE", "failed": "STATUS_FAILURE"}


def hparams_of(info: dict[str, object]) -> dict[str, bool | int | float | str]:
    """The cell's fields as HParams values (bool, number or string; unset fields left out)."""
    out: dict[str, bool | int | float | str] = {
        k: str(info[k]) for k in ("sweep", "group", "label", "cell_id")
    }
    for key, value in sorted(info.get("config", {}).items()):
        if value is None:
            continue
        out[key] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return out


class TensorBoardTracker:
    """One event directory per cell (`tensorboard --logdir <dir>/tensorboard`)."""

    def __init__(self, root: StoreRoot, sweep: str) -> None:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.plugins.hparams import api_pb2, metadata, summary_v2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        from rstsweep.sweeper.trackers import run_name, safe_name

        self._event, self._summary, self._writer_cls = event_pb2, summary_pb2, EventFileWriter
        self._api, self._meta, self._hparams_pb = api_pb2, metadata, summary_v2.hparams_pb
        self._run_name, self._safe = run_name, safe_name
        base, outside = tracker_dir(root)
        self.root = base / "tensorboard" / safe_name(sweep)
        if outside:  # say where the events went: not next to the results
            print(f"rstsweep: tensorboard events: {self.root} (store not local)", file=sys.stderr)
        self.writers: dict[str, EventFileWriter] = {}
        self.dirs: dict[str, Path] = {}
        self.last_step: dict[str, int] = {}

    def start(self, cid: str, info: dict[str, object]) -> None:
        directory = self.root / self._safe(info["group"]) / self._run_name(info)
        self.dirs[cid] = directory
        self.writers[cid] = self._writer_cls(str(directory))
        session = self._hparams_pb(hparams_of(info), trial_id=info["cell_id"])
        self._session(cid, [self._event_of(0, session)])

    def epoch(self, cid: str, step: int, metrics: dict[str, float]) -> None:
        self.last_step[cid] = step
        values = [self._summary.Summary.Value(tag=k, simple_value=v) for k, v in metrics.items()]
        self._write(cid, step, self._summary.Summary(value=values))

    def end(self, cid: str, status: str, summary: dict[str, float]) -> None:
        step = self.last_step.pop(cid, 0)
        values = [
            self._summary.Summary.Value(tag=tag, simple_value=float(summary[key]))
            for key, tag in METRIC_TAGS.items()
            if summary.get(key) is not None
        ]
        ending = self._session_end(STATUS.get(status, "STATUS_UNKNOWN"))
        events = [self._event_of(step, self._summary.Summary(value=values))] if values else []
        self._session(cid, [*events, self._event_of(step, ending)])
        self.writers.pop(cid).close()
        self.dirs.pop(cid, None)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def _session_end(self, status: str) -> Summary:
        """The HParams plugin's session-end summary (what TensorBoard's v1 `session_end_pb`
        builds, which needs TensorFlow)."""
        data = self._meta.plugin_data_pb2.HParamsPluginData(
            session_end_info=self._meta.plugin_data_pb2.SessionEndInfo(
                status=self._api.Status.Value(status), end_time_secs=time.time()
            )
        )
        return self._summary.Summary(
            value=[
                self._summary.Summary.Value(
                    tag=self._meta.SESSION_END_INFO_TAG,
                    metadata=self._meta.create_summary_metadata(data),
                    tensor=self._meta.NULL_TENSOR,
                )
            ]
        )

    def _event_of(self, step: int, summary: Summary) -> Event:
        return self._event.Event(wall_time=time.time(), step=step, summary=summary)

    def _write(self, cid: str, step: int, summary: Summary) -> None:
        self.writers[cid].add_event(self._event_of(step, summary))
        self.writers[cid].flush()

    def _session(self, cid: str, events: list[Event]) -> None:
        """The HParams session of the cell lives in `<run>/hparams` (as tensorboardX's
        `add_hparams` does): its start, and at the end its metrics and status, each write a new
        event file there, so the epoch curves of `<run>` stay as they are."""
        writer = self._writer_cls(str(self.dirs[cid] / SESSION_DIR))
        for event in events:
            writer.add_event(event)
        writer.close()


def event_dir(root: StoreRoot, sweep: str) -> Path:
    """Where the TensorBoard events of `sweep` go (for messages and the README)."""
    from rstsweep.sweeper.trackers import safe_name

    return tracker_dir(root)[0] / "tensorboard" / safe_name(sweep)

"""How tracker runs match the store's cells: one tracker run per cell attempt, found again by an id
derived from the store, the cell and the attempt, so a retried trial or a cell resumed by the next
`run` continues its MLflow/W&B run instead of opening a second one; and the runs a killed driver
left RUNNING are ended as KILLED by the next `run` or `status`.

An attempt, as in the store, is what ends in the cell's `trials` row (its done marker). Retries
after a crash and resumes after a driver kill are the same attempt: they continue from the cell's
checkpoint, and its tracker run continues with them. A finished run of the cell (its result was
later removed, e.g. quarantined by `verify --repair`) makes the next start a new attempt.

MLflow: runs carry tags `rstsweep.cell` (the derived cell key), `rstsweep.attempt` and
`rstsweep.store`; a start reopens the cell's unfinished run (status back to RUNNING) or creates
attempt n = its finished runs. W&B: the run id is derived (attempt 0) and `resume="allow"`
continues it (W&B offline files cannot be queried for earlier attempts). No ray, no torch.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlflow import MlflowClient

CELL_TAG, ATTEMPT_TAG, STORE_TAG = "rstsweep.cell", "rstsweep.attempt", "rstsweep.store"

StoreRoot = str | os.PathLike[str]  # a store's local directory or object-store URI


def store_text(root: StoreRoot) -> str:
    """The store as one stable string (an absolute path, or the object-store URI)."""
    text = str(root)
    return text if "://" in text else str(Path(text).absolute())


def cell_key(root: StoreRoot, cell_id: str) -> str:
    """A cell of a store, as a tracker key: the same cell_id in two stores is two cells."""
    return hashlib.sha256(f"{store_text(root)}\n{cell_id}".encode()).hexdigest()[:24]


def run_id(root: StoreRoot, cell_id: str, attempt: int = 0) -> str:
    """The tracker run id of a cell's attempt (W&B ids: lowercase letters and digits)."""
    return f"{cell_key(root, cell_id)}{attempt if attempt else ''}"


def tracker_dir(root: StoreRoot) -> tuple[Path, bool]:
    """Where file-based trackers write (TensorBoard events, the default MLflow file store, W&B
    offline runs): the store's directory, or, for an object-store root (s3://, gs://), a local
    directory: `RSTSWEEP_TRACKER_DIR`, else the store's local scratch (`Store.scratch_root`).
    Returns (directory, whether it is outside the store)."""
    text = str(root)
    if "://" not in text:
        return Path(text), False
    if os.environ.get("RSTSWEEP_TRACKER_DIR"):
        return Path(os.environ["RSTSWEEP_TRACKER_DIR"]), True
    from rstsweep.store.store import object_scratch_root

    return object_scratch_root(text) / "trackers", True


def mlflow_uri(root: StoreRoot) -> str:
    """`MLFLOW_TRACKING_URI`, else the file store `<tracker dir>/mlruns`."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses file stores
    return (tracker_dir(root)[0] / "mlruns").absolute().as_uri()


def open_mlflow_run(
    client: MlflowClient,
    experiment: str,
    root: StoreRoot,
    cid: str,
    create: Callable[[dict[str, str]], str],
) -> str:
    """The run id of the cell's current attempt: its unfinished run reopened, or a new run made by
    `create(tags)` for attempt n = the cell's finished runs."""
    key = cell_key(root, cid)
    runs = client.search_runs([experiment], filter_string=f"tags.`{CELL_TAG}` = '{key}'")
    for run in runs:
        if run.info.status != "FINISHED":
            client.update_run(run.info.run_id, status="RUNNING")
            return run.info.run_id
    tags = {CELL_TAG: key, ATTEMPT_TAG: str(len(runs)), STORE_TAG: store_text(root)}
    return create(tags)


def end_stale_mlflow_runs(client: MlflowClient, root: StoreRoot) -> int:
    """End as KILLED the store's runs still RUNNING (their driver is gone: call only when no live
    run holds the store). Returns how many."""
    store = store_text(root).replace("'", "\\'")
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return 0
    query = f"attributes.status = 'RUNNING' and tags.`{STORE_TAG}` = '{store}'"
    stale = client.search_runs(experiments, filter_string=query)
    for run in stale:
        client.set_tag(run.info.run_id, "status", "killed")
        client.set_terminated(run.info.run_id, "KILLED")
    return len(stale)


def end_stale_runs(root: StoreRoot) -> int:
    """`status` with no live run: end the MLflow runs a killed driver left RUNNING. Only where
    MLflow is installed and its store is configured or present (status stays fast and offline
    otherwise); W&B runs are continued, and ended, by the cell's next attempt instead."""
    import importlib.util

    if importlib.util.find_spec("mlflow") is None:
        return 0
    configured = bool(os.environ.get("MLFLOW_TRACKING_URI"))
    if not configured and not (tracker_dir(root)[0] / "mlruns").is_dir():
        return 0
    try:
        from mlflow import MlflowClient

        return end_stale_mlflow_runs(MlflowClient(tracking_uri=mlflow_uri(root)), root)
    except Exception as exc:  # a view of the store: never fail `status` over it
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        print(f"rstsweep: warning: MLflow runs not checked: {reason}", file=sys.stderr)
        return 0

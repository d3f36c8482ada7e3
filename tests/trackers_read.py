"""Read back what the trackers wrote, with each library's own reader (TensorBoard's
EventAccumulator, an MLflow client on the file store) or, for W&B's offline `.wandb` files, an
independent reader of their record format (LevelDB log blocks of `wandb_internal_pb2.Record`)."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path


def tensorboard_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value)]} of one TensorBoard run directory."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def mlflow_runs(uri: str, experiment: str) -> dict[str, dict]:
    """{run name: {status, tags, params, metrics: {key: [(step, value)]}}}."""
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses file stores
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment} at {uri}"
    out = {}
    for run in client.search_runs([found.experiment_id]):
        metrics = {
            key: sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, key))
            for key in run.data.metrics
        }
        out[run.info.run_name] = {
            "status": run.info.status,
            "tags": run.data.tags,
            "params": run.data.params,
            "metrics": metrics,
        }
    return out


def _records(path: Path) -> list:
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", path
    pos, block, out, buf = 7, 32768, [], b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        buf += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST chunk of a record
            record = pb.Record()
            record.ParseFromString(buf)
            out.append(record)
            buf = b""
        elif kind == 0:
            buf = b""
    return out


def wandb_offline_runs(root: Path) -> dict[str, dict]:
    """{run name: {group, project, config, history: [{key: value}]}} of the offline runs."""
    out = {}
    for path in sorted(root.glob("wandb/offline-run-*/run-*.wandb")):
        run: dict = {"history": []}
        for record in _records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                run["name"] = record.run.display_name
                run["group"] = record.run.run_group
                run["project"] = record.run.project
                run["config"] = {u.key: json.loads(u.value_json) for u in record.run.config.update}
            elif kind == "history":
                run["history"].append(
                    {
                        (i.key or "/".join(i.nested_key)): json.loads(i.value_json)
                        for i in record.history.item
                    }
                )
        out[run["name"]] = run
    return out

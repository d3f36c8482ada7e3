"""Experiment trackers: what `TrackerHub` writes, read back with each library's reader, and that a
tracker which cannot be reached neither blocks nor fails the caller."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from rstsweep.errors import RstError
from rstsweep.sweeper.trackers import TrackerHub, cell_info, epoch_metrics, parse_trackers
from trackers_read import mlflow_runs, tensorboard_scalars, wandb_offline_runs


def test_tracker_names():
    assert parse_trackers(None) == ("tensorboard",)
    assert parse_trackers(["none"]) == ()
    assert parse_trackers(["MLflow", "tensorboard", "mlflow"]) == ("mlflow", "tensorboard")
    with pytest.raises(RstError, match="--tracker: 'tb' is not one of tensorboard, mlflow, wandb"):
        parse_trackers(["tb"])
    with pytest.raises(RstError, match="'none' cannot be combined"):
        parse_trackers(["none", "wandb"])


def test_bad_tracker_on_the_command_line_is_one_line_exit_2(tmp_path, cli):
    result = cli("run", "s", "--store", tmp_path / "st", "--tracker", "x")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--tracker: 'x' is not one of" in lines[0]
    assert not (tmp_path / "st").exists()


def epoch_result(epoch: int) -> dict:
    """One epoch report as the trial sends it: 4 steps per epoch, 1 SA step in each."""
    return {
        "epoch": epoch,
        "train_loss": 1.0 / epoch,
        "train_error": 0.5 / epoch,
        "test_loss": 2.0 / epoch,
        "test_error": 0.6 / epoch,
        "lr": 0.1 * epoch,
        "steps": 4 * epoch,
        "sa_steps": epoch,
        "time_s": 1.5 * epoch,
    }


def fake_cell(cid: str, group: str, label: str) -> SimpleNamespace:
    config = SimpleNamespace(model_dump=lambda mode: {"model": "fastcnn", "rho": 0.05})
    return SimpleNamespace(cell_id=cid, sweep="s", group=group, label=label, config=config)


def feed(hub: TrackerHub, epochs: int = 3) -> None:
    for cid, group, label in (("c1", "constant", "a_c=0.5"), ("c2", "sgd", "SGD")):
        hub.start(cid, cell_info(fake_cell(cid, group, label), "t"))
    for epoch in range(1, epochs + 1):
        for cid in ("c1", "c2"):
            hub.epoch(cid, epoch, epoch_metrics(epoch_result(epoch)))
    hub.end("c1", "ok", {"test_error": 0.2})
    hub.end("c2", "failed")
    hub.close(timeout=120)


def test_epoch_metrics_carry_realized_extra_compute():
    assert epoch_metrics(epoch_result(2)) == {
        "train/loss": 0.5,
        "train/error": 0.25,
        "test/loss": 1.0,
        "test/error": 0.3,
        "lr": 0.2,
        "extra/realized": 0.25,
        "time/train_s": 3.0,
    }


def test_tensorboard_event_files_per_cell(tmp_path):
    warnings: list[str] = []
    feed(TrackerHub(["tensorboard"], tmp_path, "s", warn=warnings.append))
    assert warnings == []
    scalars = tensorboard_scalars(tmp_path / "tensorboard/s/constant/a_c=0.5_c1")
    # TensorBoard keeps float32 values
    assert [s for s, _ in scalars["test/error"]] == [1, 2, 3]
    assert [v for _, v in scalars["test/error"]] == pytest.approx([0.6, 0.3, 0.2], rel=1e-6)
    assert scalars["extra/realized"] == [(1, 0.25), (2, 0.25), (3, 0.25)]
    assert [v for _, v in scalars["lr"]] == pytest.approx([0.1, 0.2, 0.3], rel=1e-6)
    assert set(scalars) == {
        "train/loss",
        "train/error",
        "test/loss",
        "test/error",
        "lr",
        "extra/realized",
        "time/train_s",
    }
    assert (tmp_path / "tensorboard/s/sgd/SGD_c2").is_dir()


@pytest.mark.slow
def test_mlflow_file_store_and_wandb_offline(tmp_path, monkeypatch):
    uri = (tmp_path / "mlruns").as_uri()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    warnings: list[str] = []
    feed(TrackerHub(["mlflow", "wandb"], tmp_path, "s", warn=warnings.append))
    assert warnings == []
    runs = mlflow_runs(uri, "rstsweep-s")
    assert set(runs) == {"a_c=0.5_c1", "SGD_c2"}
    ok, failed = runs["a_c=0.5_c1"], runs["SGD_c2"]
    assert ok["status"] == "FINISHED" and failed["status"] == "FAILED"
    assert ok["tags"]["group"] == "constant" and ok["tags"]["cell_id"] == "c1"
    assert ok["params"]["rho"] == "0.05"
    assert ok["metrics"]["train/loss"] == [(1, 1.0), (2, 0.5), (3, pytest.approx(1 / 3))]
    assert ok["metrics"]["extra/realized"] == [(1, 0.25), (2, 0.25), (3, 0.25)]
    wb = wandb_offline_runs(tmp_path)
    assert set(wb) == {"a_c=0.5_c1", "SGD_c2"}
    assert wb["a_c=0.5_c1"]["group"] == "constant" and wb["a_c=0.5_c1"]["project"] == "rstsweep-s"
    assert wb["a_c=0.5_c1"]["config"]["cell_id"] == "c1"
    history = [(h["_step"], h["test/error"]) for h in wb["a_c=0.5_c1"]["history"]]
    assert history == [(1, 0.6), (2, 0.3), (3, pytest.approx(0.2))]


@pytest.mark.slow
def test_an_unreachable_tracker_never_blocks_and_warns_once(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    warnings: list[str] = []
    hub = TrackerHub(["mlflow", "tensorboard"], tmp_path, "s", warn=warnings.append)
    t0 = time.perf_counter()
    for cid in ("c1", "c2"):
        hub.start(cid, cell_info(fake_cell(cid, "sgd", cid), "t"))
    for epoch in range(1, 200):
        hub.epoch("c1", epoch, epoch_metrics(epoch_result(epoch)))
    hub.end("c1", "ok")
    assert time.perf_counter() - t0 < 0.5  # the caller never waits for a tracker
    hub.close(timeout=60)
    assert len(warnings) == 1 and warnings[0].startswith("tracker mlflow disabled: "), warnings
    # the other tracker still got everything
    scalars = tensorboard_scalars(tmp_path / "tensorboard/s/sgd/c1_c1")
    assert len(scalars["test/error"]) == 199


def _hparams_sessions(run_dir):
    """(hparams, session end status, {metric tag: value}) of a cell's HParams session, read back
    with TensorBoard's own EventAccumulator and the HParams plugin's data protos."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import api_pb2, metadata

    acc = EventAccumulator(str(run_dir / "hparams"))
    acc.Reload()
    content = acc.PluginTagToContent(metadata.PLUGIN_NAME)
    start = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    end = metadata.parse_session_end_info_plugin_data(content[metadata.SESSION_END_INFO_TAG])
    hparams = {k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind"))
               for k, v in start.hparams.items()}  # fmt: skip
    metrics = {tag: acc.Scalars(tag)[-1].value for tag in acc.Tags()["scalars"]}
    return hparams, api_pb2.Status.Name(end.status), metrics


def test_tensorboard_hparams_sessions_compare_cells(tmp_path):
    hub = TrackerHub(["tensorboard"], tmp_path, "s")
    for cid, group, label in (("c1", "constant", "a_c=0.5"), ("c2", "sgd", "SGD")):
        hub.start(cid, cell_info(fake_cell(cid, group, label), "t"))
        hub.epoch(cid, 1, epoch_metrics(epoch_result(1)))
    hub.end("c1", "ok", {"test_error": 0.2, "realized_extra": 0.25})
    hub.end("c2", "failed")
    hub.close(timeout=60)
    hparams, status, metrics = _hparams_sessions(tmp_path / "tensorboard/s/constant/a_c=0.5_c1")
    assert hparams == {
        "cell_id": "c1",
        "sweep": "s",
        "group": "constant",
        "label": "a_c=0.5",
        "model": "fastcnn",
        "rho": pytest.approx(0.05),
    }
    assert status == "STATUS_SUCCESS"
    assert metrics == {
        "hparams/test_error": pytest.approx(0.2),
        "hparams/realized_extra": pytest.approx(0.25),
    }
    hparams, status, metrics = _hparams_sessions(tmp_path / "tensorboard/s/sgd/SGD_c2")
    assert hparams["group"] == "sgd" and status == "STATUS_FAILURE" and metrics == {}


KILLED_DRIVER = """
import sys, time
from types import SimpleNamespace
sys.path.insert(0, {tests!r})
from test_trackers import epoch_result, fake_cell
from rstsweep.sweeper.trackers import TrackerHub, cell_info, epoch_metrics
hub = TrackerHub(["mlflow", "wandb"], {store!r}, "s")
hub.start("c1", cell_info(fake_cell("c1", "constant", "a_c=0.5"), "t"))
for epoch in (1, 2):
    hub.epoch("c1", epoch, epoch_metrics(epoch_result(epoch)))
while not hub._queue.empty():  # the worker thread took every event
    time.sleep(0.05)
time.sleep(3)
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.slow
def test_killed_driver_runs_end_killed_and_the_resumed_cell_continues_its_run(
    tmp_path, monkeypatch, cli, make_cell
):
    """A driver SIGKILLed mid-cell leaves its MLflow run RUNNING; `status` ends it as KILLED; the
    next run's resumed cell continues that same MLflow run and the same W&B run (derived id)."""
    import os
    import sys
    from pathlib import Path

    from processes import kill_when
    from rstsweep.store.store import Store
    from rstsweep.sweeper.tracker_runs import run_id

    store = tmp_path / "st"
    Store(store).record_cells([make_cell()], "t")  # a store for `status` to read
    env = dict(
        os.environ, WANDB_MODE="offline", WANDB_SILENT="true", MLFLOW_ALLOW_FILE_STORE="true"
    )
    for key in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "WANDB_DIR", "WANDB_PROJECT"):
        env.pop(key, None)
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    script = KILLED_DRIVER.format(tests=str(Path(__file__).parent), store=str(store))
    log = tmp_path / "driver.log"
    kill_when(
        [sys.executable, "-c", script],
        lambda: "ready" in log.read_text().splitlines(),
        log=log,
        waiting_for="ready",
        group=True,
        env=env,
    )
    uri = (store / "mlruns").as_uri()
    (run,) = mlflow_runs(uri, "rstsweep-s").values()
    assert run["status"] == "RUNNING"  # what a killed driver leaves

    assert cli("status", "--store", store).exit_code == 0
    (run,) = mlflow_runs(uri, "rstsweep-s").values()
    assert run["status"] == "KILLED"

    hub = TrackerHub(["mlflow", "wandb"], store, "s")  # the next `run` resumes the cell
    hub.start("c1", cell_info(fake_cell("c1", "constant", "a_c=0.5"), "t"))
    hub.epoch("c1", 3, epoch_metrics(epoch_result(3)))
    hub.end("c1", "ok", {"test_error": 0.2, "realized_extra": 0.25})
    hub.close(timeout=120)
    (run,) = mlflow_runs(uri, "rstsweep-s").values()  # one run, not two
    assert run["status"] == "FINISHED"
    assert [s for s, _ in run["metrics"]["test/error"]] == [1, 2, 3]
    assert run["tags"]["rstsweep.attempt"] == "0"
    wandb_ids = {p.name.rsplit("-", 1)[-1] for p in store.glob("wandb/offline-run-*")}
    assert wandb_ids == {run_id(store, "c1")}  # both sessions wrote the same W&B run


def test_tensorboard_for_an_object_store_root_writes_locally(tmp_path, monkeypatch, capfd):
    """s3:// roots: events go to RSTSWEEP_TRACKER_DIR (else the store's local scratch), and the
    run says where; nothing is written to the object store."""
    monkeypatch.setenv("RSTSWEEP_TRACKER_DIR", str(tmp_path / "tb"))
    warnings: list[str] = []
    feed(TrackerHub(["tensorboard"], "s3://bucket/results", "s", warn=warnings.append))
    assert warnings == []
    scalars = tensorboard_scalars(tmp_path / "tb/tensorboard/s/constant/a_c=0.5_c1")
    assert [s for s, _ in scalars["test/error"]] == [1, 2, 3]
    assert f"tensorboard events: {tmp_path / 'tb/tensorboard/s'}" in capfd.readouterr().err
    monkeypatch.delenv("RSTSWEEP_TRACKER_DIR")
    import tempfile

    from rstsweep.sweeper.tracker_runs import tracker_dir

    scratch = Path(tempfile.gettempdir()) / "rstsweep-scratch" / "s3___bucket_results"
    assert tracker_dir("s3://bucket/results") == (scratch / "trackers", True)
    assert tracker_dir(tmp_path / "st") == (tmp_path / "st", False)

"""Experiment trackers: what `TrackerHub` writes, read back with each library's reader, and that a
tracker which cannot be reached neither blocks nor fails the caller."""

from __future__ import annotations

import time
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

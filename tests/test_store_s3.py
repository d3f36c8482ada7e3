"""The store on object storage, against a real S3 API: moto's server (`moto[server]`) started on a
free 127.0.0.1 port by the fixture, reached through pyarrow's S3 filesystem and AWS_ENDPOINT_URL
exactly as a user's MinIO or AWS bucket would be. Stores are written through `Store` (synthetic
results, and one real `run_sweep` with the stand-in trainer) and read back with status, figures,
tables and verify; object keys are listed with boto3, independently of rstsweep."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from factories import make_cell, make_result
from rstsweep.store.store import Store, open_store
from rstsweep.testing.synthetic import small_store

moto_server = pytest.importorskip("moto.server")

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps.yaml"
BUCKET = "rst-results"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 with one bucket; AWS_* variables point at it."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one request line per S3 call
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    saved = {k: os.environ.get(k) for k in _ENV}
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
    )
    import boto3

    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    client.create_bucket(Bucket=BUCKET)
    yield client
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")


def keys(client, prefix: str) -> list[str]:
    """Every object key under `prefix`, relative to it (boto3, not rstsweep)."""
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/")
    return sorted(o["Key"][len(prefix) + 1 :] for p in pages for o in p.get("Contents", []))


def test_results_heartbeat_and_compaction_on_s3(s3):
    uri = f"s3://{BUCKET}/api"
    store = open_store(uri, must_exist=False)
    cells = [make_cell(f"constant({a})", seed=2) for a in (0.3, 0.7)]
    store.record_cells(cells, "ci")
    for cell in cells:
        store.write_result(cell, make_result(cell, steps=20), "ci")
    store.write_heartbeat({"sweep": "constant", "running": [cells[0].cell_id]})

    names = keys(s3, "api")
    parts = [k for k in names if k.endswith(".parquet")]
    assert len(parts) == 7  # 1 cells + 2 x (epochs, draws, trials): one object per write
    assert all(k.split("/")[1].startswith("part-") for k in parts)  # no temporaries, no renames
    assert "heartbeat.json" in names

    reader = open_store(uri, must_exist=True, read_only=True)
    assert reader.done_ids() == {c.cell_id for c in cells}
    assert reader.read("epochs")["cell_id"].value_counts().tolist() == [2, 2]
    assert reader.draws_of(cells[1].cell_id).tolist() == make_result(cells[1], 20).draws.tolist()
    assert reader.read_heartbeat()["running"] == [cells[0].cell_id]

    assert store.compact()["trials"] == (2, 1)
    # (pyarrow leaves a "trials/" directory marker when it deletes a directory's last object)
    assert len([k for k in keys(s3, "api") if k.startswith("trials/part-")]) == 1
    assert sorted(Store(uri).read("trials")["cell_id"]) == sorted(c.cell_id for c in cells)
    store.clear_heartbeat()
    assert "heartbeat.json" not in keys(s3, "api")


def test_status_figures_tables_verify_read_s3_like_a_local_store(s3, tmp_path, cli_main):
    uri = f"s3://{BUCKET}/synthetic/run1"
    local = tmp_path / "local"
    for where in (uri, local):
        small_store(Store(where), SWEEPS, sweeps=["constant"], seeds=2, datasets=["cifar10"])

    outputs = {}
    for where in (uri, str(local)):
        code, out, err = cli_main("tables", "-s", where, "--format", "csv")
        assert code == 0, err
        outputs[where] = out
    assert outputs[uri] == outputs[str(local)] and "SGD" in outputs[uri]

    code, out, err = cli_main("status", "-s", uri)
    assert code == 0, err
    assert f"sweeps in {uri}" in out and "store: 22 finished cells" in out

    code, out, err = cli_main("figures", "-s", uri, "-o", str(tmp_path / "fig"))
    assert code == 0, err
    assert str(tmp_path / "fig" / "figure1.png") in out.split()
    assert (tmp_path / "fig" / "figure1.png").stat().st_size > 0

    code, out, _ = cli_main("verify", "-s", uri)
    assert code == 0 and "ok: no problems found" in out

    code, _, err = cli_main("status", "-s", f"s3://{BUCKET}/nothing")
    assert code == 2
    expected = f"s3://{BUCKET}/nothing: no result store here (pass --store DIR)"
    assert err.strip() == f"rstsweep: error: {expected}"


def test_truncated_object_is_named_and_quarantined_on_s3(s3, cli_main):
    uri = f"s3://{BUCKET}/broken"
    store = Store(uri)
    cells = [make_cell(f"constant({a})", seed=3) for a in (0.1, 0.9)]
    for cell in cells:
        store.write_result(cell, make_result(cell), "ci")
    trials = [k for k in keys(s3, "broken") if k.startswith("trials/part-")]
    victim_key = f"broken/{trials[0]}"
    body = s3.get_object(Bucket=BUCKET, Key=victim_key)["Body"].read()
    s3.put_object(Bucket=BUCKET, Key=victim_key, Body=body[:100])

    code, _, err = cli_main("status", "-s", uri)
    (line,) = err.strip().splitlines()
    assert code == 2 and f"s3://{BUCKET}/{victim_key}: unreadable Parquet part file" in line

    code, out, _ = cli_main("verify", "--repair", "-s", uri)
    assert code == 0, out
    assert f"quarantine/{trials[0]}" in out and "1 cells pending again" in out
    after = keys(s3, "broken")
    assert f".quarantine/{trials[0]}" in after and trials[0] not in after
    assert (
        s3.get_object(Bucket=BUCKET, Key=f"broken/.quarantine/{trials[0]}")["Body"].read()
        == (body[:100])
    )
    assert len(Store(uri).done_ids()) == 1


@pytest.mark.slow
def test_a_sweep_runs_into_s3_exactly_once(s3, tmp_path):
    """The real driver (local Ray, stand-in trainer) writes its results and heartbeat to S3."""
    import test_driver_fake as fake
    from rstsweep.sweeper.driver import run_sweep
    from rstsweep.sweeper.options import RunOptions
    from rstsweep.sweeps import expand
    from tiny_sweeps import write_tiny_sweeps

    cells = expand(write_tiny_sweeps(tmp_path / "s.yaml", [0.3, 0.6], epochs=2), "s", "t")
    uri = f"s3://{BUCKET}/sweep"
    store = open_store(uri, must_exist=False)
    options = RunOptions(profile="t", progress=False, num_cpus=2, scratch=tmp_path / "scratch")
    from rstsweep.sweeper.resources import apply_ray_env

    apply_ray_env()
    import ray

    fake.register_by_value()
    summary = run_sweep(cells, store, options, train_fn=fake.fake_train)
    assert not ray.is_initialized()
    assert summary.done == 3 and summary.failed == 0
    trials = [k for k in keys(s3, "sweep") if k.startswith("trials/part-")]
    # one object per finished cell, merged into one by the end-of-run compaction; none twice
    assert len(trials) == 1 and trials[0].endswith("-L1.parquet")
    raw = Store(uri).location.fs.open_input_file(f"{BUCKET}/sweep/{trials[0]}")
    assert sorted(pq.read_table(raw)["cell_id"].to_pylist()) == sorted(c.cell_id for c in cells)
    assert Store(uri).done_ids() == {c.cell_id for c in cells}
    assert "heartbeat.json" not in keys(s3, "sweep")  # cleared by the driver at the end
    again = run_sweep(cells, open_store(uri, must_exist=True), options, train_fn=fake.fake_train)
    assert again.skipped == 3 and again.done == 0


def test_live_compaction_and_cached_reads_on_s3(s3, monkeypatch):
    """The run's writer on S3: small parts merged as they pile up (a merged object, the inputs
    deleted), every row read back once, then the end-of-run merge leaves one object per table."""
    from rstsweep.store import compaction

    monkeypatch.setattr(compaction, "COMPACT_AFTER", 3)
    monkeypatch.setattr(compaction, "COMPACT_FANOUT", 2)
    uri = f"s3://{BUCKET}/live"
    store = open_store(uri, must_exist=False)
    cells = [make_cell(f"constant(0.{i % 9 + 1})", seed=i) for i in range(8)]
    merges = sum(
        (store.write_result(c, make_result(c, steps=8, seed=i), "ci"), store.compact_if_due())[1]
        for i, c in enumerate(cells)
    )
    assert merges >= 2
    trials_keys = [k for k in keys(s3, "live") if k.startswith("trials/part-")]
    assert any(compaction.level_of(k) > 0 for k in trials_keys) and len(trials_keys) < len(cells)
    reader = open_store(uri, must_exist=True, read_only=True)
    assert sorted(reader.read("trials")["cell_id"]) == sorted(c.cell_id for c in cells)
    assert reader.read("epochs").groupby("cell_id").size().tolist() == [2] * len(cells)
    store.compact()
    for table in ("trials", "epochs", "draws"):
        assert len([k for k in keys(s3, "live") if k.startswith(f"{table}/part-")]) == 1
    assert sorted(reader.read("trials")["cell_id"]) == sorted(c.cell_id for c in cells)
    assert len(reader.read("epochs")) == 2 * len(cells)

"""`rstsweep run --address` on a 2-node local Ray cluster (`ray.cluster_utils.Cluster`), each node
with 1 CPU and 1 logical GPU: a sweep at 0.5 CPU + 0.5 GPU per trial runs four trials at once,
two per node and two per GPU; a request no node can hold is refused before the store is touched."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from processes import cli_process
from rstsweep.sweeper.live import read_events
from tiny_sweeps import write_tiny_sweeps

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(monkeypatch):
    # Short temp dir (Unix socket paths <= 107 bytes); RAY_TMPDIR also keeps the cluster's address
    # file out of the machine-wide /tmp/ray, so no other `ray.init()` here joins it by accident.
    short = tempfile.mkdtemp(prefix="rst-", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", short)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    from ray.cluster_utils import Cluster

    nodes = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "num_gpus": 1, "include_dashboard": False},
    )
    try:
        nodes.add_node(num_cpus=1, num_gpus=1)
        nodes.wait_for_nodes()
        yield nodes
    finally:
        nodes.shutdown()
        shutil.rmtree(short, ignore_errors=True)


RUN = ("run", "s", "--file", "s.yaml", "--profile", "t", "--store", "st", "--no-progress")


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return cli_process(*RUN, *args, cwd=tmp_path, timeout=240, env=env)


def test_two_node_cluster_runs_a_sweep_with_fractional_gpus(cluster, tmp_path):
    write_tiny_sweeps(tmp_path / "s.yaml", [0.3, 0.6, 0.9], epochs=2)
    # no --gpus-per-trial on a cluster with GPUs: one GPU per trial
    # (--gpus-per-trial 2 would fit: two data-parallel workers of one GPU, one on each node)
    refused = run_cli(tmp_path, "--address", cluster.address, "--cpus-per-trial", "2")
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        "rstsweep: error: resources: a trial asks for 2 CPU + 1 GPU but any node of the Ray "
        "cluster has at most 1 CPU + 1 GPU (2 nodes); lower --cpus-per-trial/--gpus-per-trial"
    )
    assert not (tmp_path / "st").exists()

    # the GPUs are logical (no CUDA here): a trial given one would fail unless told to use the CPU
    done = run_cli(
        tmp_path,
        *("--address", cluster.address, "--cpus-per-trial", "0.5", "--gpus-per-trial", "0.5"),
        *("--set", "device=cpu"),
    )
    assert done.returncode == 0, done.stderr
    assert "4 cells: 4 run now" in done.stdout
    trials = pd.read_parquet(tmp_path / "st" / "trials")
    assert trials["cell_id"].is_unique and len(trials) == 4
    assert (trials["status"] == "ok").all() and (trials["steps"] == 2 * 4).all()

    [run_dir] = (tmp_path / "st" / ".scratch" / "runs").iterdir()
    events = read_events(run_dir / "events.jsonl")
    finished = [e for e in events if e["event"] == "done"]
    # both nodes used, two trials on each; one GPU id per trial, each (node, GPU) shared by two
    assert sorted(Counter(e["node_id"] for e in finished).values()) == [2, 2]
    assert all(len(e["gpu_ids"]) == 1 for e in finished)
    assert sorted(Counter((e["node_id"], e["gpu_ids"][0]) for e in finished).values()) == [2, 2]
    # and at the same time: all four started before the first finished
    starts = [e["t"] for e in events if e["event"] == "start"]
    assert len(starts) == 4 and max(starts) < min(e["t"] for e in finished)

"""`rstsweep run --address` against a real Ray cluster started the way users start one: `ray start
--head` plus a second `ray start --address` worker node on this machine (free loopback ports, each
node with its own --temp-dir, logical GPUs), token authentication on, as Ray 2.6x's `ray start`
turns it on whenever a token exists. The driver is the real CLI (tests/fake_cli.py: only the
trainer is the stand-in of test_driver_fake.py). Checked: a wrong or missing token gives one line
and exit 2; a sweep at 0.5 GPU per trial lands every cell exactly once with the token found in
RAY_AUTH_TOKEN_PATH; SIGKILL of the worker node's raylet mid-sweep: the sweep finishes on the
head, the lost trials resume from their last epoch checkpoint, every cell is stored once, and the
driver says the node was lost. Every process of the cluster is found by its temp dir and killed."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tiny_sweeps import write_tiny_sweeps

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
RAY = str(Path(sys.executable).with_name("ray"))
# Fast node-death detection: the GCS declares a node dead after 3 failed 0.5 s health checks.
FAST_HEALTH = {
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
    "RAY_health_check_initial_delay_ms": "0",
}


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _node_args(temp_dir: Path) -> list[str]:
    nm, om, client, agent, agent_grpc, metrics, env_agent = _free_ports(7)
    return [
        *("--node-ip-address", "127.0.0.1", "--temp-dir", str(temp_dir)),
        *("--node-manager-port", str(nm), "--object-manager-port", str(om)),
        *("--min-worker-port", "0", "--max-worker-port", "0"),
        *("--ray-client-server-port", str(client), "--dashboard-agent-listen-port", str(agent)),
        *("--dashboard-agent-grpc-port", str(agent_grpc), "--metrics-export-port", str(metrics)),
        *("--runtime-env-agent-port", str(env_agent), "--disable-usage-stats"),
    ]


def _pids_under(root: Path, name: str = "") -> list[int]:
    """Processes whose command line mentions `root` (and `name`): this cluster's, nobody else's."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in cmd and name in cmd and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


def _kill_all(root: Path) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in _pids_under(root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        time.sleep(0.5)


class RayCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"  # no ~/.ray/auth_token of the user's is ever seen
        self.home.mkdir()
        self.token_file = root / "token"
        self.token_file.write_text(secrets.token_hex(32))
        self.port = _free_ports(1)[0]
        self.address = f"127.0.0.1:{self.port}"
        self.head_dir, self.worker_dir = root / "h", root / "w"

    def env(self, **extra: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
        base.pop("RAY_ADDRESS", None)
        base |= {"HOME": str(self.home), "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
        base["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS)])
        return base | extra

    def start(self) -> None:
        node_env = self.env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(self.token_file))
        node_env |= FAST_HEALTH
        head = [RAY, "start", "--head", "--port", str(self.port), "--include-dashboard", "false"]
        self._ray_start([*head, "--num-cpus", "1", "--num-gpus", "1"], self.head_dir, node_env)
        worker = [RAY, "start", "--address", self.address, "--num-cpus", "2", "--num-gpus", "1"]
        self._ray_start(worker, self.worker_dir, node_env)
        self.wait_for_nodes(2)

    def _ray_start(self, cmd: list[str], temp_dir: Path, env: dict[str, str]) -> None:
        proc = subprocess.run(
            [*cmd, *_node_args(temp_dir)], env=env, capture_output=True, text=True, timeout=90
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr

    def nodes(self) -> list:
        import grpc
        from ray.core.generated import gcs_service_pb2 as pb
        from ray.core.generated import gcs_service_pb2_grpc as rpc

        token = [("authorization", f"Bearer {self.token_file.read_text()}")]
        with grpc.insecure_channel(self.address) as channel:
            reply = rpc.NodeInfoGcsServiceStub(channel).GetAllNodeInfo(
                pb.GetAllNodeInfoRequest(), metadata=token, timeout=5
            )
        return list(reply.node_info_list)

    def wait_for_nodes(self, n: int, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if sum(node.state == 0 for node in self.nodes()) >= n:  # 0: ALIVE
                return
            time.sleep(0.5)
        raise AssertionError(f"fewer than {n} Ray nodes came up")

    def worker_node_id(self) -> str:
        for node in self.nodes():
            if not node.is_head_node and node.state == 0:
                return node.node_id.hex()
        raise AssertionError("no alive worker node")


@pytest.fixture(scope="module")
def cluster():
    root = Path(tempfile.mkdtemp(prefix="rstc-", dir="/tmp"))  # short: Unix socket paths
    nodes = RayCluster(root)
    try:
        nodes.start()
        yield nodes
    finally:
        _kill_all(root)
        shutil.rmtree(root, ignore_errors=True)


def rstsweep(cluster: RayCluster, cwd: Path, *args: str, timeout: float = 150, **env: str):
    return subprocess.run(
        [sys.executable, str(TESTS / "fake_cli.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=cluster.env(RSTSWEEP_FAKE_EPOCH_S="0.3", **env),
    )


RUN = ("run", "s", "--file", "s.yaml", "--profile", "t", "--store", "st", "--no-progress")


def raw_trials(store: Path) -> pd.DataFrame:
    files = sorted((store / "trials").glob("part-*.parquet"))
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)


def test_wrong_or_missing_token_is_one_line(cluster, tmp_path):
    write_tiny_sweeps(tmp_path / "s.yaml", [0.5], epochs=1)
    t0 = time.time()
    wrong = rstsweep(cluster, tmp_path, *RUN, "--address", cluster.address, RAY_AUTH_TOKEN="0" * 64)
    assert wrong.returncode == 2 and wrong.stdout == ""
    (line,) = wrong.stderr.strip().splitlines()  # no wall of InvalidAuthToken warnings
    assert line == (
        f"rstsweep: error: --address {cluster.address}: the Ray cluster requires token "
        "authentication: it refused the token from RAY_AUTH_TOKEN; set RAY_AUTH_TOKEN to the "
        "cluster's token (or RAY_AUTH_TOKEN_PATH to a file holding it; `ray get-auth-token` on "
        "the head node prints it)"
    )
    missing = rstsweep(cluster, tmp_path, *RUN, "--address", cluster.address)
    assert missing.returncode == 2
    (line,) = missing.stderr.strip().splitlines()
    assert "requires token authentication: no token was found; set RAY_AUTH_TOKEN" in line
    assert time.time() - t0 < 30  # refused at once, not after Ray's minute of retries
    assert not (tmp_path / "st").exists()


def test_sweep_through_address_with_half_gpus_lands_every_cell_once(cluster, tmp_path):
    write_tiny_sweeps(tmp_path / "s.yaml", [0.3, 0.6, 0.9], epochs=2)
    token = {"RAY_AUTH_TOKEN_PATH": str(cluster.token_file)}  # found by rstsweep, mode unset
    args = ("--address", cluster.address, "--gpus-per-trial", "0.5", "--scratch", "scr")
    done = rstsweep(cluster, tmp_path, *RUN, *args, **token)
    assert done.returncode == 0, done.stderr
    assert "4 cells: 4 run now, 0 already done, 0 failed, 0 pending" in done.stdout
    trials = raw_trials(tmp_path / "st")
    assert len(trials) == 4 and trials["cell_id"].is_unique
    events = _events(tmp_path / "scr")
    finished = [e for e in events if e["event"] == "done"]
    assert all(len(e["gpu_ids"]) == 1 for e in finished)  # half a GPU each: one GPU id
    assert len({e["node_id"] for e in finished}) == 2  # both nodes ran trials


def test_search_through_address_places_each_suggestion_on_half_a_gpu(cluster, tmp_path):
    write_tiny_sweeps(tmp_path / "s.yaml", [0.3, 0.6], epochs=1)
    token = {"RAY_AUTH_TOKEN_PATH": str(cluster.token_file)}
    args = ("search", "s", "--budget", "0.5", "--trials", "2", "--file", "s.yaml")
    args += ("--profile", "t", "--store", "st", "--address", cluster.address)
    args += ("--gpus-per-trial", "0.5", "--scratch", "scr", "--tracker", "none")
    done = rstsweep(cluster, tmp_path, *args, **token)
    assert done.returncode == 0, done.stderr
    assert "2 new suggestion(s), 2 cell(s) written" in done.stdout
    trials = raw_trials(tmp_path / "st")
    assert len(trials) == 2 and trials["cell_id"].is_unique  # one seed per suggestion
    suggestions = [e for e in _events(tmp_path / "scr") if e["event"] == "suggestion"]
    assert len(suggestions) == 2
    assert all(len(e["gpu_ids"]) == 1 and e["cuda_visible"] == e["gpu_ids"][0] for e in suggestions)


def _events(scratch: Path) -> list[dict]:
    [run_dir] = [p for p in (scratch).iterdir() if p.name.startswith("run-")]
    path = run_dir / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_killed_worker_node_sweep_finishes_on_the_head(cluster, tmp_path):
    """Runs last: it kills the worker node."""
    write_tiny_sweeps(tmp_path / "s.yaml", [0.2, 0.4, 0.6], epochs=4)
    worker = cluster.worker_node_id()
    token = {"RAY_AUTH_TOKEN_PATH": str(cluster.token_file), "RSTSWEEP_FAKE_EPOCH_S": "1.0"}
    cmd = [sys.executable, str(TESTS / "fake_cli.py"), *RUN, "--address", cluster.address]
    cmd += ["--gpus-per-trial", "0.5", "--scratch", "scr", "--max-failures", "3"]
    driver = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=cluster.env(**token),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 90
        on_worker: set[str] = set()
        while time.time() < deadline and not on_worker:
            time.sleep(0.3)
            if (tmp_path / "scr").exists():
                epochs = [e for e in _events(tmp_path / "scr") if e["event"] == "epoch"]
                on_worker = {e["cell_id"] for e in epochs if e.get("node_id") == worker}
        assert on_worker, "no trial reported an epoch on the worker node"
        [raylet] = _pids_under(cluster.worker_dir, "raylet")
        os.kill(raylet, signal.SIGKILL)  # the node dies mid-trial
        out, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err
    assert "4 cells: 4 run now, 0 already done, 0 failed, 0 pending" in out
    assert f"({worker[:8]}) was lost" in err  # the driver says so
    trials = raw_trials(tmp_path / "st")
    assert len(trials) == 4 and trials["cell_id"].is_unique  # every cell exactly once
    events = _events(tmp_path / "scr")
    assert [e["node_id"] for e in events if e["event"] == "node_lost"] == [worker]
    lost = on_worker & {e["cell_id"] for e in events if e["event"] == "retry"}
    assert lost
    for cid in lost:
        ran = [
            (e["epoch"], e["node_id"])
            for e in events
            if e["event"] == "epoch" and e["cell_id"] == cid
        ]
        # epochs 1..4, none twice: the retry went on after the last checkpointed epoch, on the head
        assert [epoch for epoch, _ in ran] == [1, 2, 3, 4]
        first_retry = next(i for i, (_, node) in enumerate(ran) if node != worker)
        assert first_retry >= 1 and all(node != worker for _, node in ran[first_retry:])
        done = next(e for e in events if e["event"] == "done" and e["cell_id"] == cid)
        assert done["node_id"] != worker and done["start_epoch"] == first_retry

"""A real single-node SLURM for tests: munged, slurmctld and slurmd started on this host from a
generated slurm.conf (no cgroups: proctrack/linuxproc, task/none; state, spool, logs and the munge
socket in a temp dir; free ports), stopped afterwards. `local_slurm()` skips the test, printing
why, where SLURM cannot start (packages missing, not root, a daemon that does not come up)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo")


def _skip(reason: str) -> None:
    print(f"SLURM test skipped: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _conf(root: Path, host: str, cpus: int) -> str:
    return f"""ClusterName=rsttest
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.sock
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ReturnToService=2
MpiDefault=none
KillWait=5
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={host} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _stop(pid_file: Path) -> None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(pid_file.read_text().split()[0])
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)


@contextlib.contextmanager
def local_slurm() -> Iterator[dict[str, str]]:
    """Yield the environment (SLURM_CONF) for sbatch/squeue against a fresh local SLURM."""
    missing = [b for b in BINARIES if shutil.which(b) is None]
    if missing:
        _skip(f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        _skip("slurmd must run as root here")
    if not Path("/etc/munge/munge.key").exists():
        _skip("/etc/munge/munge.key missing (reinstall munge)")
    root = Path(
        tempfile.mkdtemp(prefix="rst-slurm-", dir="/tmp")
    )  # short: a Unix socket lives here
    for sub in ("state", "spool"):
        (root / sub).mkdir()
    conf = root / "slurm.conf"
    conf.write_text(_conf(root, socket.gethostname().split(".")[0], os.cpu_count() or 1))
    env = dict(os.environ, SLURM_CONF=str(conf), RSTSWEEP_TEST_SLURM_ROOT=str(root))
    try:
        _start(root, conf, env)
        yield env
    finally:
        for name in ("slurmd", "slurmctld", "munged"):
            _stop(root / f"{name}.pid")
        shutil.rmtree(root, ignore_errors=True)


def _start(root: Path, conf: Path, env: dict[str, str]) -> None:
    """Start the three daemons and wait for the node to be idle; skip the test if they cannot."""
    munged = [
        "munged",
        "--force",
        f"--socket={root}/munge.sock",
        f"--pid-file={root}/munged.pid",
        f"--log-file={root}/munged.log",
        f"--seed-file={root}/munged.seed",
    ]
    try:
        subprocess.run(munged, check=True, capture_output=True, timeout=30)
        subprocess.run(["slurmctld", "-f", str(conf)], check=True, env=env, timeout=30)
        subprocess.run(["slurmd", "-f", str(conf)], check=True, env=env, timeout=30)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        _skip(f"SLURM could not start: {exc}")
    state, deadline = "", time.monotonic() + 30
    while time.monotonic() < deadline:
        state = subprocess.run(
            ["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        if state == "idle":
            return
        time.sleep(0.5)
    logs = " | ".join(
        (root / f).read_text()[-300:]
        for f in ("slurmctld.log", "slurmd.log")
        if (root / f).exists()
    )
    _skip(f"the local SLURM node did not become idle (state {state!r}): {logs}")

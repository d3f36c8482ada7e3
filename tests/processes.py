"""Real processes for the tests: `rstsweep` in a subprocess (`python -m rstsweep.cli` goes through
cli.main(), like the installed console script), its environment for a private local Ray, and a
process SIGKILLed at a chosen point, so that a test can rerun it and check what was resumed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def cli_command(*args: object) -> list[str]:
    """The command line of `rstsweep ARGS` run by this interpreter."""
    return [sys.executable, "-m", "rstsweep.cli", *map(str, args)]


def ray_env(ray_dir: Path, **extra: str) -> dict[str, str]:
    """This environment for a run that starts its own local Ray with its temp dir `ray_dir` (never
    an outside cluster from RAY_ADDRESS), plus `extra`."""
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", **extra)
    env["RSTSWEEP_RAY_TMPDIR"] = str(ray_dir)
    env.pop("RAY_ADDRESS", None)
    return env


def cli_process(
    *args: object, cwd: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`rstsweep ARGS` in a subprocess, stdout and stderr captured as text; `env` is its whole
    environment (None: this one)."""
    return subprocess.run(
        cli_command(*args), capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env
    )


def kill_when(
    command: list[str],
    ready: Callable[[], bool],
    *,
    log: Path,
    waiting_for: str,
    timeout: float = 150,
    group: bool = False,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start `command` (stdout and stderr to `log`), SIGKILL it as soon as `ready()` holds and
    return it reaped. With `group` it runs in its own process group and the whole group is killed
    (a driver's Ray processes die with it). The test fails if the process ends first or nothing
    is ready after `timeout` seconds."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env, start_new_session=group
        )
        try:
            deadline = time.monotonic() + timeout
            while not ready():
                assert proc.poll() is None, f"ended before {waiting_for}:\n{log.read_text()}"
                assert time.monotonic() < deadline, f"no {waiting_for} after {timeout:g} s"
                time.sleep(0.01)
        finally:
            with contextlib.suppress(ProcessLookupError):  # keep a failed assert's message
                if group:
                    os.killpg(proc.pid, signal.SIGKILL)
                else:
                    proc.kill()
            proc.wait(timeout=30)
    return proc

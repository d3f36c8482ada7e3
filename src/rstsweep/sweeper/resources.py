"""Ray for a sweep: the per-trial resource request, its validation, and the Ray session.

Validation happens in two places, both before any trial is launched and before the store is
touched: `validate_request` (pure, before Ray starts: values Ray would reject or a local machine
cannot hold) and `check_fits` (against `ray.nodes()` once connected: a request that no single node
can satisfy would otherwise make Ray Tune wait forever). `ray_session` starts a quiet local Ray
(dashboard off, logs not forwarded, usage stats off, its files under a dedicated temp dir), joins
an existing cluster with `address` (with Ray's token authentication when the cluster uses it:
`sweeper.auth`), or reuses a Ray already initialised in this process.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from types import ModuleType

from rstsweep.errors import RstError
from rstsweep.sweeper.auth import prepare_auth
from rstsweep.sweeper.options import Placement

# Environment for the driver and (inherited by a local Ray) its workers: quiet, no telemetry, no
# Tune loggers (our callback writes the store), the legacy output engine (which honours verbose=0).
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "100000",
    "RAY_DEDUP_LOGS": "0",
}


def memory_share(gpus: float) -> float | None:
    """The GPU-memory fraction a trial with `gpus` GPUs may allocate: its share when it asks for
    part of one GPU (0.25 -> 0.25, so 4 packed trials cannot starve each other), None (no cap)
    for no GPU or whole GPUs."""
    if 0.0 < gpus < 1.0:
        return float(gpus)
    return None


def _num(value: float) -> str:
    return f"{value:g}"


def validate_request(
    placement: Placement,
    *,
    max_failures: int = 2,
    local_cpus: float | None = None,
    local_gpus: float | None = None,
) -> None:
    """Reject a placement before Ray starts (RstError naming the option). `local_cpus`/`local_gpus`:
    what a local Ray will have (None: unknown, e.g. when joining a cluster)."""
    if not (math.isfinite(placement.cpus) and placement.cpus > 0):
        raise RstError(f"--cpus-per-trial: {_num(placement.cpus)} must be > 0")
    if not (math.isfinite(placement.gpus) and placement.gpus >= 0):
        raise RstError(f"--gpus-per-trial: {_num(placement.gpus)} must be >= 0")
    if placement.gpus > 1 and placement.gpus != int(placement.gpus):
        raise RstError(
            f"--gpus-per-trial: {_num(placement.gpus)} must be a fraction <= 1 or a whole number"
        )
    if placement.slots is not None and placement.slots < 1:
        raise RstError(f"--max-concurrent: {placement.slots} must be >= 1")
    if max_failures < 0:
        raise RstError(f"--max-failures: {max_failures} must be >= 0")
    if local_cpus is not None and local_gpus is not None:
        node = {"CPU": local_cpus, "GPU": local_gpus}
        if not fits(placement, node):
            raise RstError(_refusal(placement, [node], where="this machine"))


def fits(request: Placement, resources: dict[str, float]) -> bool:
    """Whether one node with `resources` (Ray's names: CPU, GPU) can hold one trial."""
    eps = 1e-9  # Ray keeps resources in fixed point; 0.1 * 10 must still fit into 1
    return (
        resources.get("CPU", 0.0) + eps >= request.cpus
        and resources.get("GPU", 0.0) + eps >= request.gpus
    )


def check_fits(request: Placement, nodes: list[dict[str, object]]) -> None:
    """RstError unless some alive node of `ray.nodes()` can hold one trial."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    if not any(fits(request, res) for res in alive):
        raise RstError(_refusal(request, alive, where="any node of the Ray cluster"))


def _refusal(request: Placement, nodes: list[dict[str, float]], where: str) -> str:
    largest = max(nodes, key=lambda r: (r.get("GPU", 0.0), r.get("CPU", 0.0)), default={})
    have = f"{_num(largest.get('CPU', 0.0))} CPU + {_num(largest.get('GPU', 0.0))} GPU"
    return (
        f"resources: a trial asks for {request.describe()} but {where} has at most {have} "
        f"({len(nodes)} node{'s' if len(nodes) != 1 else ''}); "
        "lower --cpus-per-trial/--gpus-per-trial"
    )


def local_resources(num_cpus: float | None, num_gpus: float | None) -> tuple[float, float]:
    """CPUs and GPUs a local Ray will be started with (GPUs detected the way Ray does)."""
    cpus = float(num_cpus) if num_cpus is not None else float(os.cpu_count() or 1)
    return cpus, float(num_gpus) if num_gpus is not None else detect_gpus()


def concurrent_here(placement: Placement) -> int:
    """Trials of `placement` that run at once on this machine (its `slots` when given)."""
    if placement.slots:
        return placement.slots
    by_cpu = (os.cpu_count() or 1) // max(placement.cpus, 1e-9)
    if placement.gpus > 0:
        return max(1, int(min(by_cpu, detect_gpus() // placement.gpus)))
    return max(1, int(by_cpu))


def cluster_gpus(ray: ModuleType) -> float:
    """GPUs of the Ray cluster this process is connected to (logical ones included)."""
    return float(ray.cluster_resources().get("GPU", 0.0))


def detect_gpus() -> float:
    """Number of GPUs Ray would detect on this machine (0 when detection is unavailable)."""
    try:
        from ray._private.accelerators import get_accelerator_manager_for_resource

        manager = get_accelerator_manager_for_resource("GPU")
        return float(manager.get_current_node_num_accelerators() or 0)
    except Exception:
        return 0.0


def apply_ray_env() -> None:
    """Set RAY_ENV defaults in this process (before importing ray: some are read at import)."""
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)


def ray_temp_dir() -> str:
    """Ray's session files: a dedicated, short path (Unix socket paths are limited to 107 bytes)."""
    explicit = os.environ.get("RSTSWEEP_RAY_TMPDIR") or os.environ.get("RAY_TMPDIR")
    if explicit:
        return explicit
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(tempfile.gettempdir(), f"rstsweep-ray-{uid}")


@contextlib.contextmanager
def ray_session(
    address: str | None, *, num_cpus: float | None = None, num_gpus: float | None = None
) -> Iterator[ModuleType]:
    """Yield the `ray` module, initialised: reuse this process's Ray, join `address`, or start a
    fresh local instance (`address="local"`, so a `ray start` cluster on this machine is never
    joined by accident). Shuts Ray down on exit only if it was started or joined here."""
    apply_ray_env()
    import ray

    if ray.is_initialized():
        yield ray
        return
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
    if address:
        probe_address(address)
        prepare_auth(address)  # token auth of `ray start` clusters: one line, not a wall of retries
    try:
        if address:
            ray.init(
                address=address, **{k: v for k, v in quiet.items() if k != "include_dashboard"}
            )
        else:
            os.makedirs(ray_temp_dir(), exist_ok=True)
            ray.init(
                address="local",
                num_cpus=int(num_cpus) if num_cpus is not None else None,
                num_gpus=int(num_gpus) if num_gpus is not None else None,
                _temp_dir=ray_temp_dir(),
                **quiet,
            )
    except (ConnectionError, ValueError, RuntimeError, OSError) as exc:
        where = f"--address {address}" if address else "local Ray"
        raise RstError(f"{where}: cannot start/connect: {str(exc).splitlines()[0]}") from None
    session_dir = None if address else _session_dir(ray)
    try:
        yield ray
    except BaseException:
        ray.shutdown()  # keep the session's logs: they may explain the failure
        raise
    ray.shutdown()
    if session_dir:
        shutil.rmtree(session_dir, ignore_errors=True)


def probe_address(address: str, timeout: float = 5.0) -> None:
    """RstError unless something listens at `address` (`host:port` or `ray://host:port`): Ray
    itself retries an unreachable address for minutes. `auto` and other forms are left to Ray."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        return
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise RstError(f"--address {address}: no Ray cluster answers there ({reason})") from None


def _session_dir(ray: ModuleType) -> str | None:
    """This local Ray's session directory (logs, sockets), removed after a clean run."""
    try:
        return ray._private.worker._global_node.get_session_dir_path()
    except Exception:
        return None

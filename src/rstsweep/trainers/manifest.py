"""The reproducibility manifest of a trial: the software, device and settings it ran with.

Recorded in every trial row (`store.rows` maps it to columns): torch, CUDA and cuDNN versions,
the device's name, type and memory, the number of visible GPUs, the NVIDIA driver version
(pynvml if installed, else `nvidia-smi`, else null), the resolved precision, whether the passes
were compiled and deterministic algorithms on, and the git commit of the project with a dirty
flag when rstsweep runs from a git checkout (null when it is installed from a wheel).
The driver and git answers are looked up once per process. Torch only (no pydantic).
"""

from __future__ import annotations

import contextlib
import functools
import platform
import subprocess
from pathlib import Path

import torch

import rstsweep
from rstsweep.core.result import MANIFEST_KEYS
from rstsweep.trainers.memory import device_memory_bytes


def collect_manifest(
    device: torch.device, precision: str, compiled: bool, deterministic: bool
) -> dict[str, object]:
    """The manifest of a run on `device` (see the module docstring); keys are MANIFEST_KEYS."""
    cuda = device.type == "cuda"
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    commit, dirty = git_state()
    manifest = {
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "cudnn_version": None if cudnn is None else str(cudnn),
        "device_type": device.type,
        "device_name": torch.cuda.get_device_name(device) if cuda else _cpu_name(),
        "device_memory_bytes": device_memory_bytes(device),
        "device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "driver_version": driver_version() if torch.cuda.is_available() else None,
        "precision": precision,
        "compiled": bool(compiled),
        "deterministic": bool(deterministic),
        "git_commit": commit,
        "git_dirty": dirty,
    }
    assert tuple(manifest) == MANIFEST_KEYS  # the store's columns
    return manifest


def _cpu_name() -> str:
    return platform.processor() or platform.machine() or "cpu"


@functools.cache
def driver_version() -> str | None:
    """The NVIDIA driver version, from pynvml or nvidia-smi; None if neither answers."""
    with contextlib.suppress(Exception):
        import pynvml  # optional (nvidia-ml-py)

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    out = _run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    return out.splitlines()[0].strip() if out else None


@functools.cache
def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the checkout rstsweep runs from; (None, None) when not in one.

    A checkout means: the package lies at <top>/src/rstsweep of a git work tree that has a
    pyproject.toml (so a wheel inside some other repository's virtualenv does not count).
    Dirty: tracked files differ from the commit (untracked files are ignored)."""
    package = Path(rstsweep.__file__).resolve().parent
    top = _run(["git", "-C", str(package), "rev-parse", "--show-toplevel"])
    if not top:
        return None, None
    root = Path(top.strip())
    if package != root / "src" / "rstsweep" or not (root / "pyproject.toml").is_file():
        return None, None
    commit = _run(["git", "-C", str(root), "rev-parse", "HEAD"])
    status = _run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"])
    if commit is None or status is None:
        return None, None
    return commit.strip(), bool(status.strip())


def _run(argv: list[str]) -> str | None:
    """stdout of a short command, or None if it is missing, fails or hangs."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None

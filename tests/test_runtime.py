"""Device choice, AMP and channels_last: the GPU paths' logic, checked on a CPU-only machine by
pretending CUDA is there (`torch.cuda.is_available` patched); nothing here touches a real GPU.
And the CPU heap a CPU runtime keeps, counted in page faults of fresh processes."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest
import torch

from rstsweep.core.config import CellConfig
from rstsweep.errors import RstError
from rstsweep.trainers.runtime import resolve_runtime, retain_cpu_heap


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)


def test_auto_on_a_cpu_machine_is_cpu_without_amp_or_channels_last(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    runtime = resolve_runtime(CellConfig(device="auto"))
    assert runtime.device == torch.device("cpu")
    assert (runtime.amp, runtime.channels_last) == (False, False)
    assert runtime.precision == "fp32"


def test_auto_with_cuda_picks_it_with_bf16_amp_and_channels_last(fake_cuda):
    runtime = resolve_runtime(CellConfig(device="auto"))
    assert runtime.device.type == "cuda"
    assert (runtime.amp, runtime.channels_last) == (True, True)
    assert runtime.precision == "bf16"


def test_explicit_switches_win_on_cuda_but_never_turn_on_for_cpu(fake_cuda):
    off = resolve_runtime(CellConfig(device="cuda:1", precision="fp32", channels_last=False))
    assert off.device == torch.device("cuda:1")
    assert (off.amp, off.channels_last) == (False, False)
    cpu = resolve_runtime(CellConfig(device="cpu", amp=True, channels_last=True))  # legacy amp
    assert (cpu.amp, cpu.channels_last) == (False, False)
    # an explicit precision is honoured on any device (CPU autocast has bf16 and fp16)
    assert resolve_runtime(CellConfig(device="cpu", precision="fp16")).precision == "fp16"


def test_cuda_requested_without_cuda_is_a_one_line_user_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RstError, match=r"^device: 'cuda' requested but CUDA is not available$"):
        resolve_runtime(CellConfig(device="cuda"))
    with pytest.raises(RstError, match=r"^device: 'gpu0' is not a torch device"):
        resolve_runtime(CellConfig(device="gpu0"))


def test_amp_autocast_is_bf16_only_when_on():
    on = resolve_runtime(CellConfig(device="cpu"))
    with on.autocast():  # off on the CPU: a matmul stays float32
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    for precision, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
        forced = type(on)(device=torch.device("cpu"), precision=precision, channels_last=False)
        with forced.autocast():  # CPU autocast shows the dtype the context asks for
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == dtype


FAULTS_SCRIPT = """
import resource, sys, torch
from torch import nn
torch.set_num_threads(1)
if sys.argv[1] == "kept":
    from rstsweep.core.config import CellConfig
    from rstsweep.trainers.runtime import resolve_runtime
    resolve_runtime(CellConfig(device="cpu"))
net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1),
                    nn.Flatten(), nn.Linear(16 * 28 * 28, 10))
x = torch.randn(64, 1, 28, 28)
def step():
    net.zero_grad(set_to_none=True)
    net(x).square().mean().backward()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_a_cpu_runtime_keeps_step_buffers_in_the_heap(tmp_path):
    """Page faults of ten forward-backward steps after warm-up, in fresh processes: glibc's
    defaults fault the activations in again every step; a CPU runtime keeps them."""
    script = tmp_path / "faults.py"
    script.write_text(FAULTS_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)

    def faults(mode: str) -> int:
        run = subprocess.run(
            [sys.executable, str(script), mode], env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        return int(run.stdout.strip())

    default, kept = faults("default"), faults("kept")
    assert default > 10_000  # ~2 MB of activations per step, faulted in 4 KiB pages
    assert kept < default / 10


def test_a_user_tuned_allocator_is_left_alone(monkeypatch):
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert retain_cpu_heap() is False

"""Device choice, AMP and channels_last: the GPU paths' logic, checked on a CPU-only machine by
pretending CUDA is there (`torch.cuda.is_available` patched); nothing here touches a real GPU."""

from __future__ import annotations

import pytest
import torch

from rstsweep.core.config import CellConfig
from rstsweep.errors import RstError
from rstsweep.trainers.runtime import resolve_runtime


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

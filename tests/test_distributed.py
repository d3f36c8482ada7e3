"""Data-parallel cells over 2 gloo processes (`trainers/distributed.py`): the SGD branch against one
process on the concatenated batch, the SA branch against per-shard SAM gradients computed here
independently, and a killed 2-process cell resumed bit-identical."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from factories import tiny_config
from rstsweep.core.config import CellConfig
from rstsweep.trainers.distributed import (
    free_port,
    init_group,
    leave_cleanly,
    parallelize,
    train_distributed,
)
from rstsweep.trainers.optim import build_lr_scheduler, build_optimizer
from rstsweep.trainers.runtime import Runtime
from rstsweep.trainers.sam import disable_running_stats
from rstsweep.trainers.step import StepContext, train_step

pytestmark = pytest.mark.slow  # starts real processes

CPU = Runtime(device=torch.device("cpu"), precision="fp32", channels_last=False)
N, D, C, STEPS = 16, 6, 3, 3


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(7)
    return torch.randn(STEPS, N, D, generator=gen), torch.randint(0, C, (STEPS, N), generator=gen)


def _context(config: CellConfig) -> StepContext:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 8), nn.Tanh(), nn.Linear(8, C))  # BN-free
    optimizer = build_optimizer(model.parameters(), config)
    ctx = StepContext(
        model=model,
        optimizer=optimizer,
        scheduler=build_lr_scheduler(optimizer, config, STEPS),
        runtime=CPU,
        label_smoothing=0.0,
        disable_running_stats=disable_running_stats,
    )
    ctx.reset_epoch_sums()
    return ctx


def _worker(rank: int, port: int, config_json: str, sa: bool, out: str) -> None:
    torch.set_num_threads(1)
    init_group(rank, 2, "127.0.0.1", port, cuda=False)
    try:
        ctx = _context(CellConfig.model_validate_json(config_json))
        parallelize(ctx, torch.device("cpu"), 2)
        xs, ys = _data()
        half = slice(rank * N // 2, (rank + 1) * N // 2)
        for t in range(STEPS if not sa else 1):
            train_step(ctx, xs[t, half], ys[t, half], sa)
        if rank == 0:
            torch.save([p.detach() for p in ctx.model.parameters()], out)
        # both ranks leave together: a gloo group torn down while its peer is still in the last
        # collective aborts the peer (SIGABRT), a flake seen on loaded machines
        dist.barrier()
    finally:
        dist.destroy_process_group()
    leave_cleanly()  # as the real peers do: no C++ teardown racing gloo's threads


def _two_processes(config: CellConfig, sa: bool, tmp_path: Path) -> list[torch.Tensor]:
    out = str(tmp_path / "params.pt")
    port = free_port()
    ctx = torch.multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(r, port, config.model_dump_json(), sa, out))
        for r in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0, 0]
    return torch.load(out)


def test_sgd_branch_equals_one_process_on_the_whole_batch(tmp_path: Path) -> None:
    # momentum, Nesterov, weight decay and clipping all act on the averaged gradient
    config = CellConfig(algorithm="sgd", lr=0.5, grad_clip=0.5, weight_decay=1e-2)
    parallel = _two_processes(config, sa=False, tmp_path=tmp_path)
    ctx = _context(config)
    xs, ys = _data()
    for t in range(STEPS):
        train_step(ctx, xs[t], ys[t], sa=False)
    for got, want in zip(parallel, ctx.model.parameters(), strict=True):
        assert torch.allclose(got, want.detach(), atol=1e-6, rtol=0)


def test_sa_branch_averages_per_shard_sam_gradients(tmp_path: Path) -> None:
    config = CellConfig(
        algorithm="sam",
        rho=0.3,
        lr=0.5,
        momentum=0.0,
        nesterov=False,
        weight_decay=0.0,
        grad_clip=None,
    )
    parallel = _two_processes(config, sa=True, tmp_path=tmp_path)
    # independently: per shard r, eps_r = rho g_r / |g_r|, g_sam_r = grad L_r(theta + eps_r);
    # one SGD step theta - lr * mean_r g_sam_r
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(D, 8), nn.Tanh(), nn.Linear(8, C))
    theta = [p.detach().clone() for p in model.parameters()]
    xs, ys = _data()
    sam_grads = []
    for r in range(2):
        half = slice(r * N // 2, (r + 1) * N // 2)
        loss = F.cross_entropy(model(xs[0, half]), ys[0, half])
        g = torch.autograd.grad(loss, list(model.parameters()))
        norm = torch.sqrt(sum((gi**2).sum() for gi in g))
        with torch.no_grad():
            for p, gi, t0 in zip(model.parameters(), g, theta, strict=True):
                p.copy_(t0 + 0.3 * gi / norm)
        loss = F.cross_entropy(model(xs[0, half]), ys[0, half])
        sam_grads.append(torch.autograd.grad(loss, list(model.parameters())))
        with torch.no_grad():
            for p, t0 in zip(model.parameters(), theta, strict=True):
                p.copy_(t0)
    for got, t0, g0, g1 in zip(parallel, theta, *sam_grads, strict=True):
        want = t0 - 0.5 * (g0 + g1) / 2
        assert torch.allclose(got, want, atol=1e-6, rtol=0)
    # and it is not the one-process SAM step on the whole batch (m-sharpness is per worker)
    whole = _context(config)
    train_step(whole, xs[0], ys[0], sa=True)
    assert not all(
        torch.allclose(a, b.detach(), atol=1e-6)
        for a, b in zip(parallel, whole.model.parameters(), strict=True)
    )


_KILLED = """
import os, sys
from pathlib import Path
from factories import tiny_config
from rstsweep.core.config import CellConfig
from rstsweep.trainers.distributed import train_distributed
config = CellConfig.model_validate_json(sys.argv[1])
def die(record):
    os._exit(17)  # killed right after epoch 1's checkpoint: no cleanup, no result
train_distributed(config, out_dir=Path(sys.argv[2]), on_epoch=die)
"""


def test_killed_two_process_cell_resumes_bit_identical(tmp_path: Path) -> None:
    config = tiny_config(
        width=8, train_subset=96, test_subset=64, batch_size=32, epochs=2, schedule="constant(0.5)",
        world_size=2,
    )  # fmt: skip
    whole = train_distributed(config, out_dir=tmp_path / "whole")
    assert whole.world_size == 2 and whole.steps == 6
    killed = subprocess.run(
        [sys.executable, "-c", _KILLED, config.model_dump_json(), str(tmp_path / "resumed")],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=600,
    )
    assert killed.returncode == 17
    assert (tmp_path / "resumed" / "checkpoint.pt").exists()
    assert not (tmp_path / "resumed" / "final.pt").exists()
    resumed = train_distributed(config, out_dir=tmp_path / "resumed", resume=True)
    want = torch.load(tmp_path / "whole" / "final.pt")
    got = torch.load(tmp_path / "resumed" / "final.pt")
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)
    assert [r.train_loss for r in resumed.epochs] == [r.train_loss for r in whole.epochs]
    assert [r.test_error for r in resumed.epochs] == [r.test_error for r in whole.epochs]
    assert resumed.draws.tolist() == whole.draws.tolist()


def test_train_cli_with_world_size_two_reports_it(cli) -> None:
    import json

    args = ["train", "--world-size", "2", "--json", "--device", "cpu", "--set", "threads=1"]
    args += ["--set", "width=8", "--set", "train_subset=64", "--set", "test_subset=64"]
    args += ["--set", "batch_size=32"]
    done = cli(*args)
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output.strip().splitlines()[-1])
    assert summary["world_size"] == 2 and summary["steps"] == 2 and summary["status"] == "ok"

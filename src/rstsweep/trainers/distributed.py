"""One cell trained data-parallel over `world_size` processes with torch.distributed (NCCL on CUDA,
gloo on CPU): process-group set-up, the `DataParallel` process group the epoch loop (`loop.train`)
runs over (DDP wrapping, checkpoint broadcast, means over the workers), and the local launcher
behind `rstsweep train --world-size N` (`sweeper/multi.py` places the workers on a Ray cluster
instead).

Semantics (SAM under data parallelism as in Foret et al. 2021, "m-sharpness"):
- `batch_size` is the global batch; worker r trains on its contiguous 1/N of every global batch
  (`augment.shard_slice`), so the workers' parts concatenate to the one-process batch.
- A base step (X_t = 0) is one synchronised pass: DDP averages the gradients, and the step equals a
  one-process step on the whole batch. A two-pass SA step runs its first pass, forward included,
  under DDP's `no_sync`: each worker perturbs θ with its own shard's gradient; the second pass at
  the worker's θ+ε_r is synchronised, so the update uses the average of the per-shard SAM
  gradients. Variants whose update also uses the first-pass gradient g (G-RST's mix, LookSAM's
  g_v) get g averaged over the workers before `second_step`, so every worker updates identically.
  LookSAM's one-pass reuse steps are synchronised like base steps.
- Every worker draws the same coin stream (seeded by the config), so they never disagree on the
  branch; the optimizer state, lr schedule and RNG states stay identical on every worker.
- BatchNorm is per worker (batch statistics of the worker's shard; each keeps its running
  statistics, rank 0's are evaluated and checkpointed: in train mode running statistics never
  enter the outputs). `sync_bn: true` uses SyncBatchNorm instead (CUDA only).
- Rank 0 alone evaluates, writes `checkpoint.pt`/`final.pt`, calls `on_epoch`; its TrainResult
  (`world_size` set) is the cell's. On resume rank 0 reads the
  checkpoint and broadcasts its bytes, so workers on other nodes need no shared disk.

Why `world_size` is part of cell_id: the per-worker perturbation (m = batch_size / world_size) and
per-worker BatchNorm statistics change what a cell computes, so a 2-worker cell is a different
experiment from the 1-worker cell with the same hyperparameters (`core.config.OMITTED_AT_DEFAULT`
keeps the cell_id of world_size 1 unchanged).
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from rstsweep.core.config import CellConfig
from rstsweep.core.names import CHECKPOINT_NAME
from rstsweep.core.result import EpochRecord, TrainResult
from rstsweep.errors import RstError
from rstsweep.trainers.checkpoint import restore_run
from rstsweep.trainers.loop import train
from rstsweep.trainers.run import Run
from rstsweep.trainers.sam import SAM, kept_gradient
from rstsweep.trainers.step import StepContext

TIMEOUT = timedelta(minutes=30)  # a collective waiting this long means a peer is gone


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def init_group(rank: int, world: int, address: str, port: int, cuda: bool) -> None:
    """Join the process group (rank 0 hosts the TCP store at address:port)."""
    dist.init_process_group(
        "nccl" if cuda else "gloo",
        init_method=f"tcp://{address}:{port}",
        rank=rank,
        world_size=world,
        timeout=TIMEOUT,
    )


def destroy() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wants_cuda(config: CellConfig) -> bool:
    return config.device.startswith("cuda") or (
        config.device == "auto" and torch.cuda.is_available()
    )


def rank_config(config: CellConfig, local_rank: int) -> CellConfig:
    """The config as worker `local_rank` of its node runs it: its own GPU (device is runtime-only,
    the cell_id is unchanged)."""
    if not wants_cuda(config):
        return config.model_copy(update={"device": "cpu"})
    if config.device in ("auto", "cuda"):
        return config.model_copy(update={"device": f"cuda:{local_rank}"})
    return config


class DataParallel:
    """The process group of worker `rank` of `world` (joined with `init_group`), as the epoch loop
    (`loop.train`) asks it: DDP steps, checkpoint broadcast, means over the workers, one stop."""

    def __init__(self, rank: int, world: int, device: str = "cpu") -> None:
        self.rank, self.world = rank, world
        if device.startswith("cuda:"):  # NCCL collectives use the current device
            torch.cuda.set_device(torch.device(device))

    def join(self, run: Run) -> None:
        """Make the run's steps data-parallel (its batches are sharded by `build_run`)."""
        if run.config.sync_bn:
            if run.runtime.device.type != "cuda":
                raise RstError("sync_bn: SyncBatchNorm needs CUDA devices (per-worker BN on CPU)")
            # the converted layers share the parameters and buffers: the optimizer stays valid
            run.ctx.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(run.ctx.model)
        parallelize(run.ctx, run.runtime.device, self.world)

    def resume(self, run: Run, checkpoint: Path | None) -> None:
        """Rank 0 reads the checkpoint (if there is one) and sends its bytes to all."""
        blob = [checkpoint.read_bytes() if checkpoint and checkpoint.exists() else None]
        dist.broadcast_object_list(blob, src=0)
        if blob[0] is None:
            return
        if checkpoint is not None:  # rank 0
            restore_run(run, checkpoint)
            return
        with tempfile.TemporaryDirectory(prefix="rstsweep-rank-") as tmp:
            path = Path(tmp) / CHECKPOINT_NAME
            path.write_bytes(blob[0])
            restore_run(run, path)

    def mean(self, values: tuple[float, float], device: torch.device) -> tuple[float, float]:
        # equal shards (batch_size divisible by world_size): the mean of the per-worker means is
        # the mean over the global batch
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(t)
        loss, error = (t / dist.get_world_size()).tolist()
        return loss, error

    def stop(self, stop: bool, device: torch.device) -> bool:
        t = torch.tensor([int(stop)], device=device)
        dist.broadcast(t, src=0)
        return bool(t.item())


def parallelize(ctx: StepContext, device: torch.device, world: int) -> None:
    """Wrap the step's model in DDP (the checkpointed module stays the plain one), run first passes
    under `no_sync`, and average a kept first-pass gradient before the SA update."""
    device_ids = [device.index] if device.type == "cuda" else None
    # rank-local BN running statistics: no buffer broadcast in forward (init params are equal)
    net = DistributedDataParallel(ctx.model, device_ids=device_ids, forward_sync_buffers=False)
    ctx.net, ctx.no_sync = net, net.no_sync
    _average_kept_gradient(ctx.optimizer, world)


def _average_kept_gradient(optimizer: SAM, world: int) -> None:
    plain_second_step = optimizer.second_step

    def second_step(zero_grad: bool = False) -> None:
        kept = kept_gradient(optimizer)
        if kept:
            for handle in [dist.all_reduce(g, async_op=True) for g in kept]:
                handle.wait()
            torch._foreach_div_(kept, float(world))
        plain_second_step(zero_grad)

    optimizer.second_step = second_step  # type: ignore[method-assign]


def train_rank(
    config: CellConfig,
    rank: int,
    world: int,
    out_dir: Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    progress: bool = False,
) -> TrainResult:
    """This process's part of the cell, in a joined process group (`loop.train` over
    `DataParallel`). Rank 0's result is the cell's."""
    group = DataParallel(rank, world, config.device)
    return train(config, out_dir, resume, on_epoch, progress, group=group)


# --------------------------------------------------------------------------- local launcher
def _peer(config_json: str, rank: int, world: int, port: int) -> None:
    """Entry point of a spawned worker process (ranks 1..N-1 of a one-machine cell)."""
    config = CellConfig.model_validate_json(config_json)
    init_group(rank, world, "127.0.0.1", port, wants_cuda(config))
    try:
        train_rank(rank_config(config, rank), rank, world)
    finally:
        destroy()
    leave_cleanly()


def leave_cleanly() -> None:
    """End a finished worker process without running C++ static destructors: under load, gloo's
    background threads can still be joinable at interpreter exit, and `std::terminate` then turns
    a worker that finished its work into a SIGABRT (exit code -6) the launcher would count as a
    failure. Python-level buffers are flushed first; nothing else is left to clean up."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def train_distributed(
    config: CellConfig,
    out_dir: Path | None = None,
    resume: bool = False,
    on_epoch: Callable[[EpochRecord], None] | None = None,
    progress: bool = False,
) -> TrainResult:
    """`train` over `config.world_size` processes on this machine: this process is rank 0 (it
    writes `out_dir` and returns the result), ranks 1..N-1 are spawned and joined here."""
    world = config.world_size
    cuda = wants_cuda(config)
    if cuda and torch.cuda.device_count() < world:
        raise RstError(f"world_size: {world} workers but {torch.cuda.device_count()} CUDA devices")
    port = free_port()
    context = torch.multiprocessing.get_context("spawn")
    peers = [
        context.Process(target=_peer, args=(config.model_dump_json(), r, world, port))
        for r in range(1, world)
    ]
    for peer in peers:
        peer.start()
    try:
        init_group(0, world, "127.0.0.1", port, cuda)
        try:
            result = train_rank(
                rank_config(config, 0), 0, world, out_dir, resume, on_epoch, progress
            )
        finally:
            destroy()
    finally:
        for peer in peers:
            peer.join(timeout=TIMEOUT.total_seconds())
    bad = [p.exitcode for p in peers if p.exitcode != 0]
    if bad:
        raise RuntimeError(f"a data-parallel worker exited with code {bad[0]}")
    return result

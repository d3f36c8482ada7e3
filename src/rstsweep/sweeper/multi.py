"""Data-parallel trials on Ray: one cell with `world_size` N > 1 runs as one Tune trial holding a
placement group of N bundles (one per worker: `cpus_per_trial` CPUs and, on GPUs, one GPU each).
The trial's own process is rank 0; it starts ranks 1..N-1 as Ray tasks in the other bundles and
they join a torch.distributed process group (`trainers/distributed.py`) at rank 0's node address.

Why a placement group with our own process group rather than Ray Train's `TorchTrainer`: the
trial stays the same Tune function trainable as a one-process cell, so everything `run`,
`resume` and `status` rely on is unchanged — rank 0 reports every epoch with its checkpoint
through `tune.report`, Tune's `FailureConfig` retries a crashed trial from that checkpoint, the
driver-side callback writes the one store row when rank 0 reports the final result (exactly once:
the other ranks report nothing), and a killed driver leaves rank 0's work-dir checkpoint for the
next run. A TorchTrainer would be a second, nested trainable with its own run directory,
checkpoint manager and failure handling (and `ray.train` calls raise inside Tune function trials),
so resume and exactly-once writes would have to be rebuilt on top of it. With `PACK` the bundles
share a node when one fits them all and spread over nodes of a Ray cluster otherwise; rank 0
ships its checkpoint to the other ranks over the process group, so nodes need no shared disk.
If any worker dies, the others fail at their next collective and the whole trial is retried.

No ray import at module level (the driver imports this before Ray starts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from rstsweep.core.config import CellConfig
from rstsweep.errors import RstError, format_validation_error
from rstsweep.sweeper.options import Placement, RunOptions

if TYPE_CHECKING:
    from ray.tune import PlacementGroupFactory

    from rstsweep.core.result import TrainResult
    from rstsweep.sweeps import Cell


def world_size_for(gpus_per_trial: float | None) -> int | None:
    """`--gpus-per-trial N` with N > 1: N data-parallel workers of one GPU each (None: as the
    sweeps file says)."""
    if gpus_per_trial is None or gpus_per_trial <= 1:
        return None
    if gpus_per_trial != int(gpus_per_trial):
        raise RstError(
            f"--gpus-per-trial: {gpus_per_trial:g} > 1 must be a whole number of GPUs "
            "(one per data-parallel worker)"
        )
    return int(gpus_per_trial)


def with_world_size(cells: Sequence[Cell], world_size: int | None) -> list[Cell]:
    """Cells with `world_size` set (a result-determining field: each gets its new cell_id)."""
    if world_size is None:
        return list(cells)
    out = []
    for cell in cells:
        data = {**cell.config.model_dump(), "world_size": world_size}
        try:
            config = CellConfig.model_validate(data)
        except ValueError as exc:
            where = f"world_size: cell {cell.cell_id}"
            raise RstError(format_validation_error(exc, where)) from None
        out.append(replace(cell, config=config, cell_id=config.cell_id()))
    return out


def apply_world_size(cells: Sequence[Cell], o: RunOptions) -> tuple[list[Cell], RunOptions]:
    """The one place the workers per trial are decided: `--world-size N`, or `--gpus-per-trial N`
    with N > 1 (N workers of one GPU each), else what the sweeps file says. Returns the cells with
    it set and the options with at most one GPU per worker."""
    world = o.world_size or world_size_for(o.gpus_per_trial)
    if world is None:
        return list(cells), o
    gpus = None if o.gpus_per_trial is None else min(1.0, o.gpus_per_trial)
    return with_world_size(cells, world), replace(o, gpus_per_trial=gpus)


def worker_bundle(placement: Placement) -> dict[str, float]:
    """One worker's resources: a multi-GPU trial gives each worker one whole GPU."""
    bundle = {"CPU": float(placement.cpus)}
    if placement.gpus > 0:
        bundle["GPU"] = 1.0
    return bundle


def trial_resources(
    placement: Placement, world_sizes: dict[str, int]
) -> dict[str, float] | Callable[[dict], PlacementGroupFactory]:
    """What `tune.with_resources` gets: the plain request when every cell has one worker, else a
    function giving each trial a placement group of one bundle per worker."""
    if all(n == 1 for n in world_sizes.values()):
        return placement.as_tune()
    from ray import tune

    one = {"CPU": float(placement.cpus), "GPU": float(placement.gpus)}

    def resources(spec: dict) -> PlacementGroupFactory:
        n = world_sizes[spec["cell_id"]]
        bundle = worker_bundle(placement) if n > 1 else one
        return tune.PlacementGroupFactory([bundle] * n, strategy="PACK")

    return resources


def check_cluster(placement: Placement, world_size: int, nodes: list[dict]) -> None:
    """RstError when the cluster's alive nodes together cannot hold one trial's N bundles."""
    alive = [n.get("Resources", {}) for n in nodes if n.get("Alive", True)]
    need = worker_bundle(placement)
    have = {key: sum(r.get(key, 0.0) for r in alive) for key in need}
    if any(have[key] < need[key] * world_size for key in need):
        asked = " + ".join(f"{v * world_size:g} {k}" for k, v in need.items())
        held = " + ".join(f"{have[k]:g} {k}" for k in need)
        raise RstError(
            f"world_size: one trial of {world_size} workers needs {asked}; Ray has {held}"
        )


def train_multi(config: CellConfig, out_dir: Path, resume: bool, on_epoch: Callable) -> TrainResult:
    """Inside a Tune trial: rank 0 here, ranks 1..N-1 as Ray tasks in the trial's other bundles."""
    import ray
    from ray.util.placement_group import get_current_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    from rstsweep.trainers import distributed

    world = config.world_size
    group = get_current_placement_group()
    if group is None:
        raise RuntimeError("a data-parallel trial must run in a placement group")
    cuda = distributed.wants_cuda(config)
    address, port = ray.util.get_node_ip_address(), distributed.free_port()
    peer = ray.remote(_peer)
    refs = [
        peer.options(
            num_cpus=0,  # the bundle's CPUs are held by the placement group for this worker
            num_gpus=1 if cuda else 0,
            max_retries=0,  # a restarted peer cannot rejoin: Tune retries the whole trial
            scheduling_strategy=PlacementGroupSchedulingStrategy(
                group, placement_group_bundle_index=rank
            ),
        ).remote(config.model_dump_json(), rank, world, address, port)
        for rank in range(1, world)
    ]
    distributed.init_group(0, world, address, port, cuda)
    try:
        # Ray gives each worker its own GPU as cuda:0 (CUDA_VISIBLE_DEVICES)
        result = distributed.train_rank(
            distributed.rank_config(config, 0), 0, world, out_dir, resume, on_epoch
        )
    finally:
        distributed.destroy()
    ray.get(refs)  # a failed peer fails the trial (and Tune retries it)
    return result


def _peer(config_json: str, rank: int, world: int, address: str, port: int) -> None:
    from rstsweep.plugins import load_plugins
    from rstsweep.sweeper.trial import hide_gpus_unless_given
    from rstsweep.trainers import distributed

    load_plugins()  # before the config is validated: it may name a plugin's schedule family
    config = CellConfig.model_validate_json(config_json)
    hide_gpus_unless_given()  # a CPU worker must never land on another trial's GPU
    distributed.init_group(rank, world, address, port, distributed.wants_cuda(config))
    try:
        distributed.train_rank(distributed.rank_config(config, 0), rank, world)
    finally:
        distributed.destroy()

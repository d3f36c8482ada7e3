"""The settings of one `rstsweep run` (or `resume`), from the command line to the driver, as one
frozen object: what to run (sweep, file, profile, config overrides), where the results go (store,
scratch) and how trials are placed (Ray address, resources, concurrency, retries). No ray here."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rstsweep.sweeper.slices import Slice


@dataclass(frozen=True)
class RunOptions:
    """Everything `run_command` / `run_sweep` need besides the cells and the store."""

    sweep: str = ""
    file: Path = Path("sweeps.yaml")
    profile: str = "paper"
    store: str | Path = "results"  # a directory or an s3:// / gs:// URI
    # CellConfig overrides on top of the profile (`--set key=value`); validated by CellConfig
    overrides: dict[str, Any] = field(default_factory=dict)
    address: str | None = None  # an existing Ray cluster; None: a local Ray
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    # data-parallel workers per trial (None: the sweeps file's world_size, or gpus_per_trial > 1)
    world_size: int | None = None
    max_concurrent: int | None = None
    max_failures: int = 2
    num_cpus: float | None = None  # local Ray only
    num_gpus: float | None = None  # local Ray only (logical GPUs allowed)
    scratch: Path | None = None  # Tune's scratch dir (shared by all nodes of a cluster)
    data_dir: Path | None = None  # one dataset directory for every cell
    progress: bool | None = None  # live display; None: when stderr is a terminal
    trackers: tuple[str, ...] = ("tensorboard",)  # sweeper.trackers names; () for none
    probe: bool = True  # time unmeasured settings first, where worth it (sweeper.probe)
    log_every_s: float = 30.0  # without the live display: a summary log line this often
    force: bool = False  # run even while another run's heartbeat on the store is live
    slice: Slice = field(default_factory=Slice)  # `--where` / `--seeds`: run only these cells

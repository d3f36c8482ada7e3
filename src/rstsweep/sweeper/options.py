"""The settings of one `rstsweep run` (or `resume`, `search`), from the command line to the driver,
as one frozen object that travels whole: what to run (sweep, file, profile, config overrides),
where the results go (store, scratch) and how trials are placed (`Placement`: the one description
of a trial's resources, used by validation, Tune, the planner's device-hours and slurm). The two
settings that depend on where the run happens are decided here, once: live progress
(`live_progress`) and GPUs per trial (`with_gpus`: one GPU per trial wherever the cluster has GPUs,
unless told otherwise). No ray here.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

from rstsweep.sweeper.slices import Slice


@dataclass(frozen=True)
class Placement:
    """What one trial holds: `cpus` CPUs and `gpus` GPUs (a fraction up to 1 packs several trials
    on one GPU; a whole number above 1 is one GPU per data-parallel worker), at most `slots`
    trials at once (None: as many as fit)."""

    cpus: float = 1.0
    gpus: float = 0.0
    slots: int | None = None

    def as_tune(self) -> dict[str, float]:
        return {"cpu": self.cpus, "gpu": self.gpus}

    def describe(self) -> str:
        return f"{self.cpus:g} CPU + {self.gpus:g} GPU"


@dataclass(frozen=True)
class RunOptions:
    """What `run_command`, `run_sweep` and `run_search` need besides the cells and the store."""

    sweep: str = ""
    file: Path = Path("sweeps.yaml")
    profile: str = "paper"
    store: str | Path = "results"  # a directory or an s3:// / gs:// URI
    # CellConfig overrides on top of the profile (`--set key=value`); validated by CellConfig
    overrides: dict[str, object] = field(default_factory=dict)
    address: str | None = None  # an existing Ray cluster; None: a local Ray
    cpus_per_trial: float = 1.0
    # None: one GPU per trial where the cluster (or this machine) has GPUs, else none (`with_gpus`)
    gpus_per_trial: float | None = None
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
    probe: bool = True  # time unmeasured settings first, where worth it (sweeper.estimates)
    log_every_s: float = 30.0  # without the live display: a summary log line this often
    # at most one epoch report (with its checkpoint) per trial this often; 0: every epoch
    report_every_s: float = 0.0
    force: bool = False  # run even while another run's heartbeat on the store is live

    @property
    def placement(self) -> Placement:
        """The trial placement these options ask for (GPUs not yet decided count as none)."""
        gpus = 0.0 if self.gpus_per_trial is None else float(self.gpus_per_trial)
        return Placement(float(self.cpus_per_trial), gpus, self.max_concurrent)

    def live_progress(self) -> bool:
        """The rich live display: as asked, else only when stderr is a terminal (a log file gets
        plain summary lines instead)."""
        return sys.stderr.isatty() if self.progress is None else bool(self.progress)

    def with_gpus(self, available: float, warn: bool = True) -> RunOptions:
        """GPUs per trial decided for a cluster with `available` GPUs: unset means one GPU per
        trial where there are GPUs (none otherwise). An explicit 0 next to GPUs is honoured with a
        one-line warning: those GPUs sit idle."""
        gpus = self.gpus_per_trial
        if gpus is None:
            gpus = 1.0 if available > 0 else 0.0
        elif gpus == 0 and available > 0 and warn:
            print(
                f"rstsweep: warning: --gpus-per-trial 0: trials run on CPUs while "
                f"{available:g} GPU(s) sit idle",
                file=sys.stderr,
            )
        return replace(self, gpus_per_trial=float(gpus))

    slice: Slice = field(default_factory=Slice)  # `--where` / `--seeds`: run only these cells

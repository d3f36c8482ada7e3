"""The cell config: everything one training run (one sweep cell) needs, typed and validated.

Pure pydantic, no torch, so the sweeper can expand and hash thousands of cells quickly.
`CellConfig.cell_id()` is the content hash that identifies a cell in the store: it covers every
field that changes the result and none of the runtime-only ones (device, data_dir, threads).
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rstsweep.core.algorithms import algorithm_names
from rstsweep.schedules import parse as parse_schedule

BaseOptimizer = Literal["sgd", "adam", "adamw"]
LrSchedule = Literal["cosine", "step", "constant"]
Augment = Literal["none", "basic", "cutout"]
MaskKind = Literal["random", "fisher"]
AsamVariant = Literal["official", "rst"]
RhoSchedule = Literal["lr", "constant"]
PadMode = Literal["reflect", "zero"]

# Fields that decide *where/how fast* a cell runs, not *what* it computes: excluded from cell_id.
# `eval_every` only thins the per-epoch test metrics; weights and final metrics are unchanged.
RUNTIME_FIELDS = frozenset({"device", "data_dir", "threads", "amp", "channels_last", "eval_every"})


class CellConfig(BaseModel):
    """One training run. `algorithm` names the sharpness-aware branch taken when the coin X_t = 1;
    `schedule` is p(t). `sgd` has no SA branch (its schedule is forced to `constant(0)`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- the RST coin and the sharpness-aware branch ---
    algorithm: str = Field("sam", description="SA branch: a name of the algorithm registry")
    schedule: str = "constant(1)"
    rho: float = Field(0.05, ge=0.0, description="SAM radius (ASAM: ~10x larger)")
    alpha: float = Field(1.0, ge=0.0, description="GNR/G-RST mix gamma/rho: (1-a)g + a*g_sam")
    asam_eta: float = Field(0.01, gt=0.0)
    asam_variant: AsamVariant = Field(
        "official", description="official: T=|w|+eta on weights only; rst: T=|w| on all params"
    )
    gsam_alpha: float = Field(0.1, ge=0.0, description="GSAM: g_p - alpha * g_perp")
    gsam_rho_schedule: RhoSchedule = Field("lr", description="GSAM: rho_t follows the lr or not")
    gsam_rho_min: float = Field(0.0, ge=0.0, description="GSAM: rho_t at lr 0 (rho is rho_max)")
    looksam_k: int = Field(5, ge=1, description="LookSAM: full SAM every k-th SA step")
    looksam_alpha: float = Field(0.7, ge=0.0)
    mask_fraction: float = Field(0.5, gt=0.0, le=1.0, description="SSAM: fraction perturbed")
    mask_kind: MaskKind = "random"
    esam_beta: float = Field(0.5, gt=0.0, le=1.0, description="ESAM SWP: P(tensor perturbed)")
    esam_gamma: float = Field(0.5, gt=0.0, le=1.0, description="ESAM SDS: fraction of samples")
    # --- switches of the RST authors' JAX code (profile `authors`) ---
    weight_decay_in_loss: bool = Field(False, description="weight decay as L2 in the loss")
    norm_perturbations: bool = Field(False, description="GNR mixes g/||g|| instead of g")
    base_grad_clip: float | None = Field(
        None, gt=0.0, description="second clip inside the base optimizer (authors: 2.0)"
    )
    warmup_sgd: bool = Field(False, description="coins forced to 0 (SGD) in warm-up epochs")

    # --- base optimizer and regularisation ---
    optimizer: BaseOptimizer = "sgd"
    lr: float = Field(0.1, gt=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0.0)
    lr_schedule: LrSchedule = "cosine"
    warmup_epochs: int = Field(0, ge=0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    label_noise: float = Field(0.0, ge=0.0, lt=1.0, description="symmetric label noise, train only")
    grad_clip: float | None = Field(5.0, gt=0.0, description="global grad-norm clip; None: off")

    # --- model and data ---
    model: str = "fastcnn"
    width: int | None = Field(None, ge=1, description="model width override (fastcnn, wrn k)")
    dataset: str = "fashion-mnist"
    augment: Augment = "basic"
    pad_mode: PadMode = Field("reflect", description="random-crop padding (authors: reflect)")
    mixup_alpha: float = Field(0.0, ge=0.0, description="mixup Beta(a, a); 0: off")
    train_subset: int | None = Field(None, ge=1)
    test_subset: int | None = Field(None, ge=1)
    batch_size: int = Field(256, ge=1)
    epochs: int = Field(1, ge=1)
    seed: int = Field(0, ge=0)

    # --- runtime only (not in cell_id) ---
    device: str = "auto"
    data_dir: str | None = None
    threads: int | None = Field(None, ge=1)
    amp: bool | None = None
    channels_last: bool | None = None
    eval_every: int = Field(1, ge=1, description="evaluate every k-th epoch (and the last)")

    @field_validator("algorithm")
    @classmethod
    def _algorithm_registered(cls, name: str) -> str:
        if name not in algorithm_names():
            raise ValueError(f"unknown {name!r} (known: {', '.join(algorithm_names())})")
        return name

    @field_validator("schedule")
    @classmethod
    def _schedule_parses(cls, spec: str) -> str:
        return parse_schedule(spec).spec  # canonical form, so equal schedules hash equally

    @model_validator(mode="after")
    def _sgd_has_no_sa_branch(self) -> CellConfig:
        if self.algorithm == "sgd" and self.schedule != parse_schedule("constant(0)").spec:
            object.__setattr__(self, "schedule", parse_schedule("constant(0)").spec)
        return self

    @model_validator(mode="after")
    def _gsam_rho_range(self) -> CellConfig:
        lr_tied = self.algorithm == "gsam" and self.gsam_rho_schedule == "lr"
        if lr_tied and self.gsam_rho_min > self.rho:
            raise ValueError(f"gsam_rho_min: {self.gsam_rho_min} is larger than rho {self.rho}")
        return self

    def identity(self) -> dict:
        """The result-determining fields, as plain JSON-able data."""
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in RUNTIME_FIELDS}

    def cell_id(self) -> str:
        """Stable content hash (16 hex chars) of the result-determining fields."""
        canonical = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

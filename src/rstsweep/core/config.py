"""The cell config: everything one training run (one sweep cell) needs, typed and validated.

Pure pydantic, no torch, so the sweeper can expand and hash thousands of cells quickly.
`CellConfig.cell_id()` is the content hash that identifies a cell in the store: it covers every
field that changes the result and none of the runtime-only ones (device, data_dir, threads).

Precision (`precision`): `fp32`, `bf16` (autocast to bfloat16) or `fp16` (autocast to float16 with
dynamic loss scaling, `torch.amp.GradScaler`). The three give different results, so an explicit
value is part of cell_id. `auto` (the default) is the device's default, resolved deterministically
when the cell runs: bf16 on CUDA, fp32 on every other device. `auto` is left out of the identity,
so cells that never named a precision keep the ids they had before the field existed; the
precision a trial actually ran in is recorded in its trial row (`precision` column). The legacy
runtime switch `amp` is still accepted and migrated: `amp: true` is `auto` (it only ever turned
bf16 on where CUDA was), `amp: false` is `fp32`.

Runtime only: `compile` (torch.compile of the base and the sharpness-aware passes: the same
arithmetic, fused differently, so results agree to rounding like on another device),
`deterministic` (torch.use_deterministic_algorithms + CUBLAS_WORKSPACE_CONFIG, for bit-identical
GPU resumes) and `memory_fraction` (the share of the GPU's memory this process may allocate; the
sweeper sets it from the trial's fractional GPU request).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rstsweep.core.algorithms import algorithm_names
from rstsweep.core.catalog import model_variant
from rstsweep.schedules import parse as parse_schedule

BaseOptimizer = Literal["sgd", "adam", "adamw"]
LrSchedule = Literal["cosine", "step", "constant"]
Augment = Literal["none", "basic", "cutout"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
MaskKind = Literal["random", "fisher"]
AsamVariant = Literal["official", "rst"]
RhoSchedule = Literal["lr", "constant"]
PadMode = Literal["reflect", "zero"]
LookSAMMode = Literal["periodic", "adaptive"]

# Fields that decide *where/how fast* a cell runs, not *what* it computes: excluded from cell_id.
# `eval_every` only thins the per-epoch test metrics; weights and final metrics are unchanged.
RUNTIME_FIELDS = frozenset(
    {
        "device",
        "data_dir",
        "threads",
        "channels_last",
        "eval_every",
        "loader_workers",
        "compile",
        "deterministic",
        "memory_fraction",
    }
)
# Result-determining fields added later: left out of cell_id at these values, which mean what cells
# meant before the field existed, so every cell that existed before keeps its cell_id. `world_size`
# changes results (each worker's SAM perturbation uses its own shard's gradient: m-sharpness with
# m = batch_size / world_size, and BatchNorm's batch statistics are per worker); `sync_bn`,
# `image_size` and an explicit `precision` change them too.
OMITTED_AT_DEFAULT: dict[str, object] = {
    "world_size": 1,
    "sync_bn": False,
    "image_size": None,
    "precision": "auto",
    # the RST authors' switches (the `authors` profile) and mixup: off is what cells did before
    "weight_decay_in_loss": False,
    "norm_perturbations": False,
    "base_grad_clip": None,
    "warmup_sgd": False,
    "mixup_alpha": 0.0,
    "signal_lag": 2,
    "looksam_mode": "periodic",
}
# Options that change what a cell computes only for one algorithm or augmentation: elsewhere they
# stay out of cell_id, so e.g. a SAM cell without crops keeps its id whatever they are. Where
# they apply they are always in it: ASAM, GSAM and ESAM now follow their reference code and crops
# pad as the RST authors' code does, so those cells compute something new and get new ids.
# (ImageNet is streamed with RandomResizedCrop: the padded crop never applies there.)
ONLY_WHERE: dict[str, Callable[[dict], bool]] = {
    "asam_variant": lambda f: f.get("algorithm") == "asam",
    "gsam_rho_schedule": lambda f: f.get("algorithm") == "gsam",
    "gsam_rho_min": lambda f: f.get("algorithm") == "gsam",
    "esam_beta": lambda f: f.get("algorithm") == "esam",
    "looksam_mode": lambda f: f.get("algorithm") == "looksam",
    "pad_mode": lambda f: (
        f.get("augment") in ("basic", "cutout") and f.get("dataset") != "imagenet"
    ),
    # a closed-loop policy's decision lag (also omitted at 2, what every policy cell did before)
    "signal_lag": lambda f: _is_policy(f.get("schedule", "")),
}


def _is_policy(spec: str) -> bool:
    return parse_schedule(spec).is_policy


def _in_identity(key: str, value: object, fields: dict) -> bool:
    if key in RUNTIME_FIELDS or key == "amp":
        return False
    if key in OMITTED_AT_DEFAULT and OMITTED_AT_DEFAULT[key] == value:
        return False
    return ONLY_WHERE[key](fields) if key in ONLY_WHERE else True


def identity_of(fields: dict) -> dict:
    """The result-determining part of a config dump (also of an older one read from the store)."""
    return {k: v for k, v in fields.items() if _in_identity(k, v, fields)}


class CellConfig(BaseModel):
    """One training run. `algorithm` names the sharpness-aware branch taken when the coin X_t = 1;
    `schedule` is p(t). `sgd` has no SA branch (its schedule is forced to `constant(0)`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # --- the RST coin and the sharpness-aware branch ---
    algorithm: str = Field("sam", description="SA branch: a name of the algorithm registry")
    schedule: str = Field("constant(1)", description="p(t): chance of the SA branch at step t")
    rho: float = Field(0.05, ge=0.0, description="SAM radius (ASAM: ~10x larger)")
    alpha: float = Field(1.0, ge=0.0, description="GNR/G-RST mix gamma/rho: (1-a)g + a*g_sam")
    asam_eta: float = Field(0.01, gt=0.0, description="ASAM: eta of the adaptive radius")
    asam_variant: AsamVariant = Field(
        "official", description="official: T=|w|+eta on weights only; rst: T=|w| on all params"
    )
    gsam_alpha: float = Field(0.1, ge=0.0, description="GSAM: g_p - alpha * g_perp")
    gsam_rho_schedule: RhoSchedule = Field("lr", description="GSAM: rho_t follows the lr or not")
    gsam_rho_min: float = Field(0.0, ge=0.0, description="GSAM: rho_t at lr 0 (rho is rho_max)")
    looksam_k: int = Field(5, ge=1, description="LookSAM: full SAM every k-th SA step")
    looksam_alpha: float = Field(0.7, ge=0.0, description="LookSAM: weight of the reused g_v")
    looksam_mode: LookSAMMode = Field(
        "periodic",
        description="LookSAM: periodic (full every k-th SA step); adaptive (AE-LookSAM: every SA "
        "step full, base steps reuse g_v; the default under schedule aesam)",
    )
    mask_fraction: float = Field(0.5, gt=0.0, le=1.0, description="SSAM: fraction perturbed")
    mask_kind: MaskKind = Field("random", description="SSAM: which weights are perturbed")
    esam_beta: float = Field(0.5, gt=0.0, le=1.0, description="ESAM SWP: P(tensor perturbed)")
    esam_gamma: float = Field(0.5, gt=0.0, le=1.0, description="ESAM SDS: fraction of samples")
    # --- switches of the RST authors' JAX code (profile `authors`) ---
    weight_decay_in_loss: bool = Field(False, description="weight decay as L2 in the loss")
    norm_perturbations: bool = Field(False, description="GNR mixes g/||g|| instead of g")
    base_grad_clip: float | None = Field(
        None, gt=0.0, description="second clip inside the base optimizer (authors: 2.0)"
    )
    warmup_sgd: bool = Field(False, description="coins forced to 0 (SGD) in warm-up epochs")
    signal_lag: int = Field(
        2, ge=0, le=2, description="policies: X_t from step t-lag's |g|^2 (0: exact, 1 read/step)"
    )

    # --- base optimizer and regularisation ---
    optimizer: BaseOptimizer = Field("sgd", description="base optimizer")
    lr: float = Field(0.1, gt=0.0, description="peak learning rate")
    momentum: float = Field(0.9, ge=0.0, lt=1.0, description="SGD momentum")
    nesterov: bool = Field(True, description="SGD: Nesterov momentum")
    weight_decay: float = Field(5e-4, ge=0.0, description="weight decay, in the base update")
    lr_schedule: LrSchedule = Field("cosine", description="learning rate over the epochs")
    warmup_epochs: int = Field(0, ge=0, description="linear learning-rate warm-up epochs")
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="label smoothing of the loss")
    label_noise: float = Field(0.0, ge=0.0, lt=1.0, description="symmetric label noise, train only")
    grad_clip: float | None = Field(5.0, gt=0.0, description="global grad-norm clip; null: off")

    # --- model and data ---
    model: str = Field(
        "fastcnn",
        description="model name (wrn-D-K: depth D, width K); its layout per data set: "
        "`rstsweep fields --models`",
    )
    width: int | None = Field(None, ge=1, description="model width override (fastcnn, wrn k)")
    dataset: str = Field("fashion-mnist", description="data set name")
    augment: Augment = Field("basic", description="basic: flip + pad-crop; cutout: basic + cutout")
    pad_mode: PadMode = Field("reflect", description="random-crop padding (authors: reflect)")
    mixup_alpha: float = Field(0.0, ge=0.0, description="mixup Beta(a, a); 0: off")
    train_subset: int | None = Field(None, ge=1, description="seeded training subset; null: all")
    test_subset: int | None = Field(None, ge=1, description="seeded test subset; null: all")
    batch_size: int = Field(256, ge=1, description="batch size")
    epochs: int = Field(1, ge=1, description="training epochs")
    seed: int = Field(0, ge=0, description="seed of the init, data order and coins")
    precision: Precision = Field("auto", description="auto: bf16 on CUDA, fp32 elsewhere")
    image_size: int | None = Field(None, ge=8, description="imagenet crop size (default 224)")

    # --- data parallelism (torch.distributed): batch_size is the global batch ---
    world_size: int = Field(1, ge=1, description="data-parallel processes (one cell)")
    sync_bn: bool = Field(False, description="SyncBatchNorm across workers (world_size > 1)")

    # --- runtime only (not in cell_id) ---
    device: str = Field("auto", description="auto (cuda if available), cpu, cuda, cuda:1, ...")
    data_dir: str | None = Field(None, description="dataset directory")
    threads: int | None = Field(None, ge=1, description="torch CPU threads")
    channels_last: bool | None = Field(None, description="channels_last; null: on CUDA only")
    eval_every: int = Field(1, ge=1, description="evaluate every k-th epoch (and the last)")
    loader_workers: int | None = Field(
        None, ge=0, description="DataLoader worker processes of streamed datasets (imagenet)"
    )
    compile: bool = Field(False, description="torch.compile the base and the SA passes")
    deterministic: bool = Field(False, description="deterministic algorithms (bit-identical GPU)")
    memory_fraction: float | None = Field(
        None, gt=0.0, le=1.0, description="cap of this process's share of GPU memory"
    )

    @model_validator(mode="before")
    @classmethod
    def _ae_looksam_under_aesam(cls, data: object) -> object:
        """LookSAM under the AE-SAM policy is AE-LookSAM (Jiang et al., ICLR 2023): the policy
        picks the full SAM steps and LookSAM's reuse step replaces the base step. An explicit
        `looksam_mode: periodic` keeps the k-counted LookSAM on the steps the policy picks."""
        if not isinstance(data, dict) or "looksam_mode" in data:
            return data
        if data.get("algorithm") != "looksam" or not isinstance(data.get("schedule"), str):
            return data
        try:
            kind = parse_schedule(data["schedule"])
        except ValueError:
            return data  # the schedule's own validator names the problem
        if kind.is_policy and kind.family == "aesam":
            return {**data, "looksam_mode": "adaptive"}
        return data

    @model_validator(mode="before")
    @classmethod
    def _migrate_amp(cls, data: object) -> object:
        """`amp` (a runtime switch before `precision` existed): true -> auto, false -> fp32."""
        if not isinstance(data, dict) or "amp" not in data:
            return data
        data = dict(data)
        amp = data.pop("amp")
        if amp is None:
            return data
        if not isinstance(amp, bool):
            raise ValueError(f"amp: {amp!r} is not true/false (use precision: fp32/bf16/fp16)")
        given = data.get("precision", "auto")
        if (given == "fp32") == amp and given != "auto":
            raise ValueError(f"amp: {amp} contradicts precision: {given} (drop amp)")
        data["precision"] = given if amp else "fp32"
        return data

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
    def _batch_splits_evenly(self) -> CellConfig:
        if self.batch_size % self.world_size:
            raise ValueError(
                f"batch_size {self.batch_size} is not divisible by world_size {self.world_size} "
                "(batch_size is the global batch, split evenly over the workers)"
            )
        return self

    @model_validator(mode="after")
    def _policies_run_on_one_process(self) -> CellConfig:
        # Data-parallel workers keep their first-pass gradients local (m-sharpness), so their
        # gradient-norm signals differ and a policy would choose different branches per worker.
        if self.world_size > 1 and _is_policy(self.schedule):
            raise ValueError(
                f"schedule {self.schedule!r} is a closed-loop policy: it needs world_size 1 "
                "(data-parallel workers see different gradient norms)"
            )
        return self

    @model_validator(mode="after")
    def _exact_decisions_need_every_gradient(self) -> CellConfig:
        # ESAM's first pass skips the weight gradients of the tensors it will not perturb, so
        # before the decision it cannot both save them and measure ‖g‖² of every tensor.
        if self.signal_lag == 0 and self.algorithm == "esam" and _is_policy(self.schedule):
            raise ValueError(
                "signal_lag: 0 (decide from the step's own ‖g‖²) does not combine with algorithm "
                "esam, whose first pass skips weight gradients (use signal_lag 2)"
            )
        return self

    @model_validator(mode="after")
    def _model_has_a_layout_for_the_data(self) -> CellConfig:
        model_variant(self.model, self.dataset)  # VGG16-BN / WideResNet on ImageNet: refused
        return self

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
        return identity_of(self.model_dump(mode="json"))

    def cell_id(self) -> str:
        """Stable content hash (16 hex chars) of the result-determining fields."""
        canonical = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

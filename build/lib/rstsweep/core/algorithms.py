"""The algorithm registry: every sharpness-aware branch RST can take, by name, without torch.

An `AlgorithmSpec` names the torch builder (a "module:function" path the trainer imports, so this
module stays torch-free and a user's algorithm can live in their own package) and what one SA step
of it costs in forward-backward passes beyond the base step's one. The cell config validates
`algorithm` against this registry and the planner reads the costs from it, so a new algorithm is a
`register_algorithm(...)` call and a builder, with no change to the CLI, the YAML or the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from rstsweep.errors import RstError


@dataclass(frozen=True)
class AlgorithmSpec:
    """One sharpness-aware algorithm.

    `builder`: "module:function" returning the optimizer for (params, config).
    `extra_passes`: extra forward-backward passes of one SA step over the base step (SAM: 1.0,
    the second pass) under the cost model of `rstsweep.core.passes`, which refines it for
    LookSAM and ESAM (`expected_sa_extra`); the trainer counts what each step actually ran.
    """

    name: str
    builder: str
    extra_passes: float
    summary: str


_REGISTRY: dict[str, AlgorithmSpec] = {}


def register_algorithm(spec: AlgorithmSpec, *, replace: bool = False) -> AlgorithmSpec:
    """Add `spec` to the registry (`replace=True` to redefine a name)."""
    if spec.name in _REGISTRY and not replace:
        raise RstError(f"algorithm: {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_algorithm(name: str) -> AlgorithmSpec:
    """The registered algorithm `name`; a one-line error listing the known ones otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise RstError(f"algorithm: unknown {name!r} (known: {known})") from None


def algorithm_names() -> tuple[str, ...]:
    """Every registered algorithm name, in registration order."""
    return tuple(_REGISTRY)


_BUILD = "rstsweep.trainers.optim"
for _name, _builder, _extra, _summary in (
    ("sgd", "build_sam", 0.0, "the base optimizer alone (no SA branch; schedule constant(0))"),
    ("sam", "build_sam", 1.0, "SAM (Foret et al., 2021): ascent step, second pass at θ+ε"),
    ("gnr", "build_sam", 1.0, "GNR / G-RST: (1-α)·∇L(θ) + α·∇L(θ+ε)"),
    ("asam", "build_asam", 1.0, "ASAM (Kwon et al., 2021): scale-invariant ε"),
    ("gsam", "build_gsam", 1.0, "GSAM (Zhuang et al., 2022): surrogate-gap guided ascent"),
    ("looksam", "build_looksam", 1.0, "LookSAM (Liu et al., 2022): full SAM every k-th SA step"),
    ("esam", "build_masked", 1.0, "ESAM (Du et al., 2022): tensor-level SWP + data selection"),
    ("ssam", "build_masked", 1.0, "SSAM-style (Mi et al., 2022): sparse perturbation mask"),
):
    register_algorithm(AlgorithmSpec(_name, f"{_BUILD}:{_builder}", _extra, _summary))

"""The schema of sweeps.yaml (pydantic) and the checks pydantic cannot express: CellConfig keys,
model/dataset names, grid values, template references, schedule helpers and `include` targets.
Every problem is a one-line RstError naming its YAML path (`sweeps.s.groups.g.grid.a_c[2]`).
`resolve_groups` lists a sweep's groups with includes followed. No torch, no ray.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from rstsweep.core.catalog import MODEL_NAMES, dataset_names, is_known_model, model_names
from rstsweep.core.config import CellConfig
from rstsweep.errors import PathPart, RstError, format_validation_error, unknown_key, yaml_path
from rstsweep.sweeps.templates import refs

# Names the cell loop sets itself; a config section may not set them.
LOOP_FIELDS = frozenset({"model", "dataset", "seed"})
CONFIG_FIELDS = frozenset(CellConfig.model_fields) - LOOP_FIELDS
# A group's `schedule:` may call one of these (the paper's one-parameter schedule groups).
SCHEDULE_HELPERS = ("piecewise_group", "linear_group")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProfileSpec(_Strict):
    description: str = ""
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    models: list[str] | None = None
    datasets: list[str] | None = None
    config: dict[str, object] = Field(default_factory=dict)
    per_model: dict[str, dict[str, object]] = Field(default_factory=dict)
    per_dataset: dict[str, dict[str, object]] = Field(default_factory=dict)
    overrides: dict[str, object] = Field(default_factory=dict)


class GroupSpec(BaseModel):
    """A group: spec keys below plus any CellConfig field (checked by `_check_group`)."""

    model_config = ConfigDict(extra="allow")

    description: str = ""
    grid: dict[str, list[object]] = Field(default_factory=dict)
    schedule: str | dict[str, object] | None = None
    label: str | None = None
    x: float | str | None = None
    rho_scale: float = Field(1.0, gt=0)

    @property
    def overrides(self) -> dict[str, object]:
        return dict(self.model_extra or {})

    @property
    def helper(self) -> tuple[str, int] | None:
        """(helper name, group number) when `schedule:` calls a schedule helper, else None."""
        if not isinstance(self.schedule, dict):
            return None
        kind = next((k for k in self.schedule if k in SCHEDULE_HELPERS), None)
        return None if kind is None else (kind, self.schedule[kind])


class SweepSpec(_Strict):
    description: str = ""
    figure: str | None = None
    table: str | None = None
    models: list[str] | None = None
    datasets: list[str] | None = None
    max_seeds: int | None = Field(None, ge=1)
    config: dict[str, object] = Field(default_factory=dict)
    per_model: dict[str, dict[str, object]] = Field(default_factory=dict)
    include: list[str] = Field(default_factory=list)
    groups: dict[str, GroupSpec] = Field(default_factory=dict)


class Defaults(_Strict):
    models: list[str] = Field(default_factory=lambda: ["fastcnn"])
    datasets: list[str] = Field(default_factory=lambda: ["fashion-mnist"])


class SweepsFile(_Strict):
    """The whole sweeps.yaml, structurally validated (values are checked when a sweep expands)."""

    defaults: Defaults = Field(default_factory=Defaults)
    profiles: dict[str, ProfileSpec]
    sweeps: dict[str, SweepSpec]
    _source: str = PrivateAttr(default="sweeps.yaml")

    @property
    def source(self) -> str:
        return self._source


@dataclass(frozen=True)
class GroupRef:
    """A group as a sweep uses it: its name, its spec and the YAML path of its definition."""

    name: str
    spec: GroupSpec
    where: tuple[str, ...]


# ----------------------------------------------------------------------------- loading


def load_sweeps(path: str | Path) -> SweepsFile:
    """Read and structurally validate a sweeps file. Every problem is an RstError of one line."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RstError(f"{path}: sweeps file not found (pass --file PATH)") from None
    except OSError as exc:
        raise RstError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_sweeps(text, source=str(path))


def parse_sweeps(text: str, source: str = "sweeps.yaml") -> SweepsFile:
    """Validate the YAML text of a sweeps file (see `load_sweeps`)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise RstError(f"{source}: invalid YAML{where}: {problem}") from None
    if not isinstance(raw, dict):
        raise RstError(f"{source}: expected a mapping with 'profiles' and 'sweeps'")
    try:
        spec = SweepsFile.model_validate(raw)
    except ValidationError as exc:
        raise RstError(format_validation_error(exc, model=SweepsFile)) from None
    spec._source = source
    _check_semantics(spec)
    return spec


def as_sweeps_file(path_or_file: str | Path | SweepsFile) -> SweepsFile:
    return path_or_file if isinstance(path_or_file, SweepsFile) else load_sweeps(path_or_file)


def sweep_names(path_or_file: str | Path | SweepsFile) -> list[str]:
    return list(as_sweeps_file(path_or_file).sweeps)


# ----------------------------------------------------------------------------- semantic checks


def check_config_keys(section: Mapping[str, object], *where: PathPart) -> None:
    """Every key of a config section is a CellConfig field the cell loop does not set itself."""
    for key in section:
        if key in LOOP_FIELDS:
            hint = "seeds: list" if key == "seed" else f"{key}s: list"
            raise RstError(
                f"{yaml_path(*where, key)}: set by the cell loop; use the `{hint}` instead",
                field=key,
            )
        if key not in CONFIG_FIELDS:
            msg = unknown_key(key, sorted(CONFIG_FIELDS), "not a CellConfig field")
            raise RstError(f"{yaml_path(*where, key)}: {msg}", field=key)


def _check_names(names: list[str] | None, *where: PathPart) -> None:
    for i, name in enumerate(names or []):
        known = dataset_names() if where[-1] == "datasets" else None
        ok = name in known if known else is_known_model(name)
        if not ok:
            # models: the CIFAR ones, "...", then the registered ones (the ImageNet ResNets are
            # rarely what was meant)
            models, builtin = model_names(), len(MODEL_NAMES)
            hint = ", ".join(known) if known else ", ".join((*models[:5], "...", *models[builtin:]))
            raise RstError(
                f"{yaml_path(*where, i)}: unknown {where[-1][:-1]} {name!r} (known: {hint})"
            )


def _check_semantics(spec: SweepsFile) -> None:
    """What pydantic cannot see: CellConfig keys, names, include targets, group keys, templates."""
    _check_names(spec.defaults.models, "defaults", "models")
    _check_names(spec.defaults.datasets, "defaults", "datasets")
    for name, prof in spec.profiles.items():
        where = ("profiles", name)
        _check_names(prof.models, *where, "models")
        _check_names(prof.datasets, *where, "datasets")
        for i, seed in enumerate(prof.seeds):
            if seed < 0:
                raise RstError(f"{yaml_path(*where, 'seeds', i)}: {seed} must be >= 0")
        check_config_keys(prof.config, *where, "config")
        check_config_keys(prof.overrides, *where, "overrides")
        for kind in ("per_model", "per_dataset"):
            for key, section in getattr(prof, kind).items():
                check_config_keys(section, *where, kind, key)
    for name, sweep in spec.sweeps.items():
        where = ("sweeps", name)
        _check_names(sweep.models, *where, "models")
        _check_names(sweep.datasets, *where, "datasets")
        check_config_keys(sweep.config, *where, "config")
        for key, section in sweep.per_model.items():
            check_config_keys(section, *where, "per_model", key)
        for gname, group in sweep.groups.items():
            _check_group(group, *where, "groups", gname)
        resolve_groups(spec, name)  # include targets exist, no cycles, at least one group


def _check_group(group: GroupSpec, *where: PathPart) -> None:
    for key in group.overrides:
        if key not in CONFIG_FIELDS:
            if key in LOOP_FIELDS:
                raise RstError(f"{yaml_path(*where, key)}: set by the cell loop, not by a group")
            known = sorted({*GroupSpec.model_fields, *CONFIG_FIELDS})
            tail = f"group keys: {', '.join(GroupSpec.model_fields)}, or a CellConfig field"
            raise RstError(f"{yaml_path(*where, key)}: {unknown_key(key, known, tail)}")
    for axis, values in group.grid.items():
        if not values:
            raise RstError(f"{yaml_path(*where, 'grid', axis)}: empty grid axis")
        for i, value in enumerate(values):
            if not isinstance(value, (int, float, str)) or isinstance(value, bool):
                raise RstError(
                    f"{yaml_path(*where, 'grid', axis, i)}: {value!r} is not a number/string"
                )
    if isinstance(group.schedule, dict):
        _check_helper(group.schedule, *where, "schedule")
    for key, template in _templates(group):
        for ref in refs(template):
            if ref not in group.grid:
                have = ", ".join(group.grid) or "none"
                raise RstError(
                    f"{yaml_path(*where, *key)}: {{{ref}}} is not a grid name (grid: {have})"
                )


def _check_helper(helper: dict[str, object], *where: PathPart) -> None:
    kinds = [k for k in helper if k in SCHEDULE_HELPERS]
    extra = [k for k in helper if k not in (*SCHEDULE_HELPERS, "value")]
    if extra:
        known = ", ".join(SCHEDULE_HELPERS)
        raise RstError(f"{yaml_path(*where, extra[0])}: unknown key (known: {known}, value)")
    if len(kinds) != 1 or "value" not in helper:
        raise RstError(
            f"{yaml_path(*where)}: expected {{piecewise_group: N, value: V}} "
            "or {{linear_group: N, value: V}}"
        )


def _templates(group: GroupSpec) -> Iterator[tuple[tuple[str, ...], str]]:
    """(key path inside the group, template string) of every templated field."""
    for key in ("label", "x"):
        value = getattr(group, key)
        if isinstance(value, str):
            yield (key,), value
    if isinstance(group.schedule, str):
        yield ("schedule",), group.schedule
    elif isinstance(group.schedule, dict) and isinstance(group.schedule.get("value"), str):
        yield ("schedule", "value"), group.schedule["value"]
    for key, value in group.overrides.items():
        if isinstance(value, str):
            yield (key,), value


# ----------------------------------------------------------------------------- includes


def resolve_groups(spec: SweepsFile, sweep: str, stack: tuple[str, ...] = ()) -> list[GroupRef]:
    """The sweep's groups in order: included ones first (in `include` order), then its own."""
    if sweep in stack:
        raise RstError(f"sweeps.{stack[0]}.include: include cycle {' -> '.join((*stack, sweep))}")
    body = spec.sweeps[sweep]
    out: list[GroupRef] = []
    for i, ref in enumerate(body.include):
        target, _, gname = ref.partition(".")
        where = yaml_path("sweeps", sweep, "include", i)
        if target not in spec.sweeps:
            known = ", ".join(spec.sweeps)
            raise RstError(f"{where}: unknown sweep {target!r} (known: {known})")
        groups = resolve_groups(spec, target, (*stack, sweep))
        if gname:
            groups = [g for g in groups if g.name == gname]
            if not groups:
                raise RstError(f"{where}: sweep {target!r} has no group {gname!r}")
        out.extend(groups)
    out.extend(GroupRef(n, g, ("sweeps", sweep, "groups", n)) for n, g in body.groups.items())
    if not out:
        raise RstError(f"sweeps.{sweep}: no groups (give `groups:` or `include:`)")
    return out

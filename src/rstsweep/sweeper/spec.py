"""sweeps.yaml: validation (pydantic; one-line errors naming the YAML path) and expansion to cells.

File layout (see the repo's sweeps.yaml for the real thing):

    defaults: {models: [...], datasets: [...]}       # sweeps without their own lists use these
    profiles:
      NAME:
        seeds: [0, 1]                 # every cell runs once per seed
        models: [fastcnn]             # optional: replaces every sweep's model list (collapse)
        datasets: [fashion-mnist]     # optional: replaces every sweep's dataset list
        config: {...}                 # CellConfig defaults of the profile
        per_model: {MODEL: {...}}     # CellConfig overrides for one model
        per_dataset: {DATASET: {...}} # CellConfig overrides for one dataset (e.g. rho)
        overrides: {...}              # applied last, over sweep/group settings (epochs of a demo)
    sweeps:
      NAME:
        description: ...
        figure: / table: ...          # what it feeds in the paper
        models: / datasets: [...]
        max_seeds: 3                  # use only the first k seeds of the profile
        config: {...}                 # CellConfig overrides for the whole sweep (augment: cutout)
        per_model: {MODEL: {...}}     # ... and for one model of the sweep (ViT's epochs)
        include: [SWEEP, SWEEP.GROUP] # reuse another sweep's groups (same cells, same cell_ids)
        groups:
          GROUP:
            grid: {a_c: [0.1, 0.2]}   # cartesian product over the axes
            schedule: "constant({a_c})"   # or {piecewise_group: 1, value: "{b_p}"} / linear_group
            label: "a_c={a_c}"        # default: "k=v,k=v" (or the group name)
            x: "{a_c}"                # x-axis value for plots; arithmetic allowed: "1 - {b_p}"
            rho_scale: 10             # multiplies the resolved rho (ASAM's ~10x radius)
            algorithm: gnr            # ... any other CellConfig field, templated with grid values
            alpha: "{g}/{p}"

Config precedence (later wins): CellConfig defaults < profile.config < profile.per_model <
profile.per_dataset < sweep.config < sweep.per_model < group fields < profile.overrides; then
model, dataset and seed.
Cells are ordered seed-major (all cells of seed 0 first) so a partly run sweep is complete early.
No torch, no ray.
"""

from __future__ import annotations

import ast
import difflib
import itertools
import math
import operator
import re
import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from rstsweep.core.catalog import DATASETS, MODEL_NAMES, is_known_model
from rstsweep.core.config import CellConfig
from rstsweep.errors import RstError

# Names the cell loop sets itself; a config section may not set them.
_LOOP_FIELDS = frozenset({"model", "dataset", "seed"})
_CONFIG_FIELDS = frozenset(CellConfig.model_fields) - _LOOP_FIELDS
_SCHEDULE_HELPERS = ("piecewise_group", "linear_group")


# ----------------------------------------------------------------------------- pydantic models


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProfileSpec(_Strict):
    description: str = ""
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    models: list[str] | None = None
    datasets: list[str] | None = None
    config: dict[str, Any] = Field(default_factory=dict)
    per_model: dict[str, dict[str, Any]] = Field(default_factory=dict)
    per_dataset: dict[str, dict[str, Any]] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)


class GroupSpec(BaseModel):
    """A group: spec keys below plus any CellConfig field (checked by `_check_group_keys`)."""

    model_config = ConfigDict(extra="allow")

    description: str = ""
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    schedule: str | dict[str, Any] | None = None
    label: str | None = None
    x: float | str | None = None
    rho_scale: float = Field(1.0, gt=0)

    @property
    def overrides(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class SweepSpec(_Strict):
    description: str = ""
    figure: str | None = None
    table: str | None = None
    models: list[str] | None = None
    datasets: list[str] | None = None
    max_seeds: int | None = Field(None, ge=1)
    config: dict[str, Any] = Field(default_factory=dict)
    per_model: dict[str, dict[str, Any]] = Field(default_factory=dict)
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
class Cell:
    """One unit of work: a fully resolved CellConfig and where it sits in its sweep."""

    sweep: str
    group: str
    label: str
    x: float | None
    config: CellConfig
    cell_id: str


# ----------------------------------------------------------------------------- loading


def _path(*parts: Any) -> str:
    """YAML path: `a.b[3].c` (ints are list indices)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _validation_line(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    first = exc.errors()[0]
    loc = first.get("loc", ())
    message = first.get("msg", str(exc)).removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        message = "unknown key"
        parent = _model_at(model, loc[:-1]) if model else None
        if parent is not None:
            known = list(parent.model_fields)
            message = _unknown_key(str(loc[-1]), known, f"known: {', '.join(known)}")
    elif first.get("type") == "missing":
        message = "required key is missing"
    value = first.get("input")
    if first.get("type") not in ("extra_forbidden", "missing") and _is_scalar(value):
        message = f"{value!r}: {message}"
    return f"{_path(*loc)}: {message}" if loc else message


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class found by walking `loc` from `model` (for 'known keys' hints)."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
        else:  # a dict[str, Model] / list / Optional: look for a model among the type arguments
            current = next((a for a in getattr(current, "__args__", ()) if _is_model(a)), None)
            if current is None:
                return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _is_model(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, BaseModel)


def _unknown_key(key: str, known: list[str], tail: str = "") -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key ({hint}{tail})" if hint or tail else "unknown key"


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
        raise RstError(_validation_line(exc, SweepsFile)) from None
    spec._source = source
    _check_semantics(spec)
    return spec


def _check_config_keys(section: Mapping[str, Any], *where: Any) -> None:
    for key in section:
        if key in _LOOP_FIELDS:
            hint = "seeds: list" if key == "seed" else f"{key}s: list"
            raise RstError(f"{_path(*where, key)}: set by the cell loop; use the `{hint}` instead")
        if key not in _CONFIG_FIELDS:
            msg = _unknown_key(key, sorted(_CONFIG_FIELDS), "not a CellConfig field")
            raise RstError(f"{_path(*where, key)}: {msg}")


def _check_names(names: list[str] | None, *where: Any) -> None:
    for i, name in enumerate(names or []):
        known = DATASETS if where[-1] == "datasets" else None
        ok = name in known if known else is_known_model(name)
        if not ok:
            # models: the CIFAR ones, then "..." (the ImageNet ResNets are rarely what was meant)
            hint = ", ".join(known) if known else ", ".join(MODEL_NAMES[:5]) + ", ..."
            raise RstError(f"{_path(*where, i)}: unknown {where[-1][:-1]} {name!r} (known: {hint})")


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
                raise RstError(f"{_path(*where, 'seeds', i)}: {seed} must be >= 0")
        _check_config_keys(prof.config, *where, "config")
        _check_config_keys(prof.overrides, *where, "overrides")
        for kind in ("per_model", "per_dataset"):
            for key, section in getattr(prof, kind).items():
                _check_config_keys(section, *where, kind, key)
    for name, sweep in spec.sweeps.items():
        where = ("sweeps", name)
        _check_names(sweep.models, *where, "models")
        _check_names(sweep.datasets, *where, "datasets")
        _check_config_keys(sweep.config, *where, "config")
        for key, section in sweep.per_model.items():
            _check_config_keys(section, *where, "per_model", key)
        for gname, group in sweep.groups.items():
            _check_group(group, *where, "groups", gname)
        _resolve_groups(spec, name)  # include targets exist, no cycles, at least one group


def _check_group(group: GroupSpec, *where: Any) -> None:
    for key in group.overrides:
        if key not in _CONFIG_FIELDS:
            if key in _LOOP_FIELDS:
                raise RstError(f"{_path(*where, key)}: set by the cell loop, not by a group")
            known = sorted({*GroupSpec.model_fields, *_CONFIG_FIELDS})
            tail = f"group keys: {', '.join(GroupSpec.model_fields)}, or a CellConfig field"
            raise RstError(f"{_path(*where, key)}: {_unknown_key(key, known, tail)}")
    for axis, values in group.grid.items():
        if not values:
            raise RstError(f"{_path(*where, 'grid', axis)}: empty grid axis")
        for i, value in enumerate(values):
            if not isinstance(value, (int, float, str)) or isinstance(value, bool):
                raise RstError(
                    f"{_path(*where, 'grid', axis, i)}: {value!r} is not a number/string"
                )
    if isinstance(group.schedule, dict):
        _check_helper(group.schedule, *where, "schedule")
    for key, template in _templates(group):
        for ref in _refs(template):
            if ref not in group.grid:
                have = ", ".join(group.grid) or "none"
                raise RstError(
                    f"{_path(*where, *key)}: {{{ref}}} is not a grid name (grid: {have})"
                )


def _check_helper(helper: dict[str, Any], *where: Any) -> None:
    kinds = [k for k in helper if k in _SCHEDULE_HELPERS]
    extra = [k for k in helper if k not in (*_SCHEDULE_HELPERS, "value")]
    if extra:
        raise RstError(
            f"{_path(*where, extra[0])}: unknown key (known: {', '.join(_SCHEDULE_HELPERS)}, value)"
        )
    if len(kinds) != 1 or "value" not in helper:
        raise RstError(
            f"{_path(*where)}: expected {{piecewise_group: N, value: V}} "
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


def _refs(template: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError:
        return []


# ----------------------------------------------------------------------------- expansion


@dataclass(frozen=True)
class _Group:
    name: str
    spec: GroupSpec
    where: tuple[str, ...]  # YAML path of the group's definition


def _resolve_groups(spec: SweepsFile, sweep: str, stack: tuple[str, ...] = ()) -> list[_Group]:
    """The sweep's groups in order: included ones first (in `include` order), then its own."""
    if sweep in stack:
        raise RstError(f"sweeps.{stack[0]}.include: include cycle {' -> '.join((*stack, sweep))}")
    body = spec.sweeps[sweep]
    out: list[_Group] = []
    for i, ref in enumerate(body.include):
        target, _, gname = ref.partition(".")
        if target not in spec.sweeps:
            known = ", ".join(spec.sweeps)
            raise RstError(
                f"{_path('sweeps', sweep, 'include', i)}: unknown sweep {target!r} (known: {known})"
            )
        groups = _resolve_groups(spec, target, (*stack, sweep))
        if gname:
            groups = [g for g in groups if g.name == gname]
            if not groups:
                raise RstError(
                    f"{_path('sweeps', sweep, 'include', i)}: "
                    f"sweep {target!r} has no group {gname!r}"
                )
        out.extend(groups)
    out.extend(_Group(n, g, ("sweeps", sweep, "groups", n)) for n, g in body.groups.items())
    if not out:
        raise RstError(f"sweeps.{sweep}: no groups (give `groups:` or `include:`)")
    return out


def _pick(kind: str, name: str, known: Mapping[str, Any]) -> Any:
    if name not in known:
        raise RstError(f"unknown {kind} {name!r} (known: {', '.join(known)})")
    return known[name]


def sweep_names(path_or_file: str | Path | SweepsFile) -> list[str]:
    return list(_as_file(path_or_file).sweeps)


def _as_file(path_or_file: str | Path | SweepsFile) -> SweepsFile:
    return path_or_file if isinstance(path_or_file, SweepsFile) else load_sweeps(path_or_file)


def expand(path_or_file: str | Path | SweepsFile, sweep: str, profile: str) -> list[Cell]:
    """All cells of `sweep` under `profile`, deduplicated by cell_id (first occurrence wins).

    Raises RstError (one line, YAML path) for an unknown sweep/profile or any invalid value.
    """
    spec = _as_file(path_or_file)
    body = _pick("sweep", sweep, spec.sweeps)
    prof = _pick("profile", profile, spec.profiles)
    groups = _resolve_groups(spec, sweep)
    models = prof.models or body.models or spec.defaults.models
    datasets = prof.datasets or body.datasets or spec.defaults.datasets
    seeds = prof.seeds[: body.max_seeds] if body.max_seeds else prof.seeds
    points = {g.where: list(_grid_points(g)) for g in groups}
    cells: dict[str, Cell] = {}
    for seed, model, dataset in itertools.product(seeds, models, datasets):
        base = _base_layers(prof, body, profile, sweep, model, dataset)
        for group in groups:
            for point in points[group.where]:
                cell = _make_cell(sweep, group, point, base, prof, profile, model, dataset, seed)
                cells.setdefault(cell.cell_id, cell)
    return list(cells.values())


def expand_all(path_or_file: str | Path | SweepsFile, profile: str) -> dict[str, list[Cell]]:
    """Every sweep of the file expanded under `profile` (validates the whole file)."""
    spec = _as_file(path_or_file)
    return {name: expand(spec, name, profile) for name in spec.sweeps}


# A grid point: axis -> (index in the YAML list, value)
_Point = dict[str, tuple[int, Any]]


def _grid_points(group: _Group) -> Iterator[_Point]:
    axes = list(group.spec.grid.items())
    ranges = [list(enumerate(values)) for _, values in axes]
    for combo in itertools.product(*ranges):
        yield {name: iv for (name, _), iv in zip(axes, combo, strict=True)}


# A resolved field: (value, YAML path that set it, template it came from or None)
_Layer = dict[str, tuple[Any, tuple[Any, ...], str | None]]


def _base_layers(
    prof: ProfileSpec, body: SweepSpec, profile: str, sweep: str, model: str, dataset: str
) -> _Layer:
    out: _Layer = {}
    sections = [
        (prof.config, ("profiles", profile, "config")),
        (prof.per_model.get(model, {}), ("profiles", profile, "per_model", model)),
        (prof.per_dataset.get(dataset, {}), ("profiles", profile, "per_dataset", dataset)),
        (body.config, ("sweeps", sweep, "config")),
        (body.per_model.get(model, {}), ("sweeps", sweep, "per_model", model)),
    ]
    for section, where in sections:
        out.update({k: (v, (*where, k), None) for k, v in section.items()})
    return out


def _make_cell(
    sweep: str,
    group: _Group,
    point: _Point,
    base: _Layer,
    prof: ProfileSpec,
    profile: str,
    model: str,
    dataset: str,
    seed: int,
) -> Cell:
    values = {name: value for name, (_, value) in point.items()}
    layers = dict(base)
    g = group.spec
    for key, value in g.overrides.items():
        layers[key] = (
            _fill(value, values, group, point, (key,)),
            (*group.where, key),
            _tmpl(value),
        )
    if g.schedule is not None:
        sched, where = _schedule(g.schedule, values, group, point)
        layers["schedule"] = (sched, where, _tmpl(g.schedule))
    layers.update(
        {k: (v, ("profiles", profile, "overrides", k), None) for k, v in prof.overrides.items()}
    )
    fields = {k: v for k, (v, _, _) in layers.items()}
    if g.rho_scale != 1.0:
        fields["rho"] = (
            float(fields.get("rho", CellConfig.model_fields["rho"].default)) * g.rho_scale
        )
    try:
        config = CellConfig(**fields, model=model, dataset=dataset, seed=seed)
    except ValidationError as exc:
        raise RstError(_cell_error(exc, layers, group, point)) from None
    label = _label(g, values, group, point)
    x = _fill(g.x, values, group, point, ("x",)) if g.x is not None else None
    if x is not None and not isinstance(x, (int, float)):
        raise RstError(f"{_path(*group.where, 'x')}: {x!r} is not a number")
    return Cell(sweep, group.name, label, None if x is None else float(x), config, config.cell_id())


def _tmpl(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("value")
    return value if isinstance(value, str) and _refs(value) else None


def _label(g: GroupSpec, values: dict[str, Any], group: _Group, point: _Point) -> str:
    if g.label is not None:
        return str(_fill(g.label, values, group, point, ("label",), numeric=False))
    if not values:
        return group.name
    return ",".join(f"{k}={_fmt(v)}" for k, v in values.items())


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else repr(value)
    return str(value)


def _fill(
    value: Any,
    values: dict[str, Any],
    group: _Group,
    point: _Point,
    key: tuple[str, ...],
    numeric: bool = True,
) -> Any:
    """Substitute grid values into a template; a result that is arithmetic becomes a number."""
    if not isinstance(value, str) or not _refs(value):
        return value
    try:
        text = value.format(**{k: _fmt(v) for k, v in values.items()})
    except (KeyError, IndexError, ValueError) as exc:
        raise RstError(f"{_path(*group.where, *key)}: bad template {value!r} ({exc})") from None
    if not numeric:
        return text
    number = _arith(text)
    return text if number is None else number


_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _arith(text: str) -> float | int | None:
    """`text` as a number if it is a plain arithmetic expression of numbers, else None."""
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return None

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        raise ValueError("not arithmetic")

    try:
        result = ev(tree.body)
    except (ValueError, ZeroDivisionError):
        return None
    if isinstance(result, int):
        return result
    # 1.5/0.1 -> 15.000000000000002: round to 12 significant digits so such values hash as written
    return float(f"{result:.12g}") if math.isfinite(result) else None


def _schedule(
    sched: str | dict[str, Any], values: dict[str, Any], group: _Group, point: _Point
) -> tuple[str, tuple[Any, ...]]:
    """The schedule spec string of a cell (helpers called), and the YAML path it came from."""
    from rstsweep.schedules import ScheduleError, linear_group, parse, piecewise_group

    if isinstance(sched, str):
        where = (*group.where, "schedule")
        text = _fill(sched, values, group, point, ("schedule",), numeric=False)
        try:
            return parse(text).spec, where
        except ScheduleError as exc:
            raise RstError(_grid_error(str(exc), where, sched, group, point)) from None
    kind = next(k for k in sched if k in _SCHEDULE_HELPERS)
    where = (*group.where, "schedule", "value")
    value = _fill(sched["value"], values, group, point, ("schedule", "value"))
    helper = piecewise_group if kind == "piecewise_group" else linear_group
    try:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ScheduleError(f"{value!r} is not a number")
        return helper(sched[kind], float(value)).spec, where
    except ScheduleError as exc:
        raise RstError(_grid_error(str(exc), where, _tmpl(sched), group, point)) from None


def _grid_error(
    message: str, where: tuple[Any, ...], template: str | None, group: _Group, point: _Point
) -> str:
    """Point the message at the grid value responsible when the field's template uses one axis:
    `sweeps.constant.groups.constant.grid.a_c[3]: 1.2 is not in [0, 1]`."""
    refs = list(dict.fromkeys(_refs(template))) if template else []
    if len(refs) != 1 or refs[0] not in point:
        suffix = f" (grid point {_point_text(point)})" if point else ""
        return f"{_path(*where)}: {message}{suffix}"
    axis = refs[0]
    index, value = point[axis]
    tail = re.search(r"(is not in .*|must be .*|is outside .*)$", message)
    text = f"{_fmt(value)} {tail.group(1)}" if tail else f"{_fmt(value)}: {message}"
    return f"{_path(*group.where, 'grid', axis, index)}: {text}"


def _point_text(point: _Point) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, (_, v) in point.items())


def _cell_error(exc: ValidationError, layers: _Layer, group: _Group, point: _Point) -> str:
    first = exc.errors()[0]
    loc = first.get("loc", ())
    message = first.get("msg", str(exc)).removeprefix("Value error, ")
    field = str(loc[0]) if loc else None
    if field not in layers:
        return f"{_path(*group.where)}: {field or 'config'}: {message}"
    value, where, template = layers[field]
    if template is not None:
        return _grid_error(message, where, template, group, point)
    return f"{_path(*where)}: {value!r}: {message}"


def cells_by_group(cells: list[Cell]) -> dict[str, list[Cell]]:
    """Cells grouped by group name, in first-seen order."""
    out: dict[str, list[Cell]] = {}
    for cell in cells:
        out.setdefault(cell.group, []).append(cell)
    return out
